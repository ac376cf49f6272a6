"""Provider discovery: pluggy hooks under the entry-point group ``runvoy``."""

from runvoy_core.plugins.hookspecs import PLUGIN_API_VERSION, hookimpl, hookspec
from runvoy_core.plugins.registry import ProviderRegistry, ProviderSpec

__all__ = ["PLUGIN_API_VERSION", "ProviderRegistry", "ProviderSpec", "hookimpl", "hookspec"]
