"""Entry point of the azure provider: hook implementations only; imports no SDK."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl

RUNVOY_PLUGIN_API = 1


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="azure",
            factory="runvoy_azure.provider:create_provider",
            config_model="runvoy_azure.config:AzureConfig",
            capabilities=frozenset(),
            install_extra="azure",
            description="(skeleton)",
        )
    )
