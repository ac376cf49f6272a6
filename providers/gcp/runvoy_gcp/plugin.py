"""Entry point of the gcp provider: hook implementations only; imports no Google library."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl

RUNVOY_PLUGIN_API = 1


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="gcp",
            factory="runvoy_gcp.provider:create_provider",
            config_model="runvoy_gcp.config:GcpConfig",
            capabilities=frozenset({"image", "secrets", "native_timeout", "detached_supervision"}),
            install_extra="gcp",
            description="GCP Cloud Run jobs, Cloud Logging, GCS records, locks and log archive",
        )
    )
