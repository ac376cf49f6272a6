"""Entry point of the gcp provider: hook implementations only; imports no Google library."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl
from runvoy_core.ports.capabilities import Capability

RUNVOY_PLUGIN_API = 2


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="gcp",
            factory="runvoy_gcp.provider:create_provider",
            config_model="runvoy_gcp.config:GcpConfig",
            pricing="runvoy_gcp.pricing:PRICING",
            credentials="runvoy_gcp.credentials:CHECK",
            capabilities=frozenset(
                {
                    Capability.IMAGE,
                    Capability.SECRETS,
                    Capability.NATIVE_TIMEOUT,
                    Capability.DETACHED_SUPERVISION,
                    Capability.LOG_ARCHIVE,
                    Capability.SETUP,
                    Capability.STORE_SCOPED,
                    Capability.BATCH_STATUS,
                    Capability.COST_ROLLUPS,
                    Capability.DOCUMENTS,
                }
            ),
            install_extra="gcp",
            description="GCP Cloud Run jobs, Cloud Logging, GCS records, locks and log archive",
        )
    )
