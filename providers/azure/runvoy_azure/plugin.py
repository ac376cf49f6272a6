"""Entry point of the azure provider: hook implementations only; imports no Azure SDK."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl
from runvoy_core.ports.capabilities import Capability

RUNVOY_PLUGIN_API = 2

CAPABILITIES = frozenset(
    {
        Capability.IMAGE,
        Capability.SPOT,
        Capability.SECRETS,
        Capability.LOG_ARCHIVE,
        Capability.SETUP,
        Capability.STORE_SCOPED,
        Capability.LEFTOVER_SWEEP,
        Capability.COST_ROLLUPS,
        Capability.DOCUMENTS,
    }
)


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="azure",
            factory="runvoy_azure.provider:create_provider",
            config_model="runvoy_azure.config:AzureConfig",
            pricing="runvoy_azure.pricing:PRICING",
            credentials="runvoy_azure.credentials:CHECK",
            capabilities=CAPABILITIES,
            install_extra="azure",
            description="Azure Container Instances; logs archived to Blob storage; records and locks in Table storage",
        )
    )
