"""Entry point of the azure provider: hook implementations only; imports no Azure SDK."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl

RUNVOY_PLUGIN_API = 1

CAPABILITIES = frozenset({"image", "spot", "secrets"})


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="azure",
            factory="runvoy_azure.provider:create_provider",
            config_model="runvoy_azure.config:AzureConfig",
            capabilities=CAPABILITIES,
            install_extra="azure",
            description="Azure Container Instances; logs archived to Blob storage; records and locks in Table storage",
        )
    )
