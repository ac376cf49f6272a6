"""Entry point of the built-in local provider (group ``runvoy``, name ``local``). Imports nothing heavy."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl
from runvoy_core.ports.capabilities import Capability

RUNVOY_PLUGIN_API = 2

# image: with a configured container runtime; arm64: on an arm64 machine (compute.validate says why not)
CAPABILITIES = frozenset(
    {
        Capability.IMAGE,
        Capability.ARM64,
        Capability.GRACEFUL_STOP,
        Capability.NATIVE_TIMEOUT,
        Capability.DETACHED_SUPERVISION,
        Capability.SECRETS,
        Capability.NATIVE_WAIT,
        Capability.RAW_LOGS,
        Capability.FILE_LOGS,
        Capability.SETUP,
        Capability.STORE_SCOPED,
        Capability.COST_ROLLUPS,
        Capability.DOCUMENTS,
    }
)


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="local",
            factory="runvoy_core.providers.local.provider:create_provider",
            config_model="runvoy_core.providers.local.config:LocalConfig",
            pricing="runvoy_core.providers.local.pricing:PRICING",
            capabilities=CAPABILITIES,
            description="processes on this machine under a detached supervisor; SQLite state (the default)",
        )
    )
