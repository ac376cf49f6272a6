"""Entry point of the aws provider: hook implementations only; imports no SDK."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl
from runvoy_core.ports.capabilities import Capability

RUNVOY_PLUGIN_API = 2


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="aws",
            factory="runvoy_aws.provider:create_provider",
            config_model="runvoy_aws.config:AwsConfig",
            pricing="runvoy_aws.pricing:PRICING",
            credentials="runvoy_aws.credentials:CHECK",
            capabilities=frozenset(
                {
                    Capability.IMAGE,
                    Capability.SPOT,
                    Capability.ARM64,
                    Capability.SECRETS,
                    Capability.GRACEFUL_STOP,
                    Capability.LOG_ARCHIVE,
                    Capability.SETUP,
                    Capability.STORE_SCOPED,
                    Capability.COST_ROLLUPS,
                    Capability.BATCH_STATUS,
                    Capability.DOCUMENTS,
                }
            ),
            install_extra="aws",
            description="AWS ECS Fargate tasks, CloudWatch Logs, DynamoDB records and locks, S3 archive",
        )
    )
