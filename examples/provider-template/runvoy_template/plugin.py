"""The entry point: hook implementations only. It imports nothing heavy (no SDK, no pydantic model of its own):
runvoy loads every plugin on every command."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl
from runvoy_core.ports.capabilities import Capability

RUNVOY_PLUGIN_API = 2


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="template",
            factory="runvoy_template.provider:create_provider",
            config_model="runvoy_template.config:TemplateConfig",
            # declared once, here: the core refuses requests that need anything else (--image, --spot, ...)
            capabilities=frozenset({Capability.GRACEFUL_STOP, Capability.SETUP}),
            description="processes on this machine, state in files (the provider template)",
        )
    )
