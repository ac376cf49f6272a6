"""Entry point of the aws provider: hook implementations only; imports no SDK."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl

RUNVOY_PLUGIN_API = 1


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="aws",
            factory="runvoy_aws.provider:create_provider",
            config_model="runvoy_aws.config:AwsConfig",
            capabilities=frozenset({"image", "spot", "arm64", "secrets", "graceful_stop"}),
            install_extra="aws",
            description="AWS ECS Fargate tasks, CloudWatch Logs, DynamoDB records and locks, S3 archive",
        )
    )
