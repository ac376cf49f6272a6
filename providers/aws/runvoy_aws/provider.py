"""The aws provider: ECS Fargate + CloudWatch Logs + DynamoDB + S3 (+ SSM / Secrets Manager for secrets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runvoy_aws.clients import AwsClients
from runvoy_aws.compute import EcsCompute
from runvoy_aws.config import AwsConfig
from runvoy_aws.logs import CloudWatchLogs
from runvoy_aws.register import DynamoLockRegister
from runvoy_aws.registries import EcrLogin
from runvoy_aws.setup import AwsSetup
from runvoy_aws.store import DynamoStore
from runvoy_core.config import Settings
from runvoy_core.errors import ConfigError


class AwsProvider:
    name = "aws"

    def __init__(self, config: AwsConfig, settings: Settings | None = None) -> None:
        self.config = config
        wanted_region = config.region or (settings.region if settings else None)
        self.clients = AwsClients(config, wanted_region)
        region = self.clients.region
        if not region:
            raise ConfigError(
                "no AWS region configured for the aws provider",
                hint="set providers.aws.region in the config file, RUNVOY_PROVIDERS__AWS__REGION, or AWS_REGION",
            )
        self.region: str | None = region
        self.poll_interval_min = config.poll_interval_min
        self.poll_interval_max: float | None = None  # the user's poll_interval_max
        s3 = self._s3
        self.compute = EcsCompute(self.clients, config, region)
        self.logs = CloudWatchLogs(self.clients.client("logs"), s3, config, clients=self.clients)
        self.store = DynamoStore(self.clients.client("dynamodb"), config.executions_table, s3, config.bucket)
        self.locks = DynamoLockRegister(self.clients.client("dynamodb"), config.locks_table)
        self._ecr_login = EcrLogin(self.clients)

    def _s3(self) -> Any:
        return self.clients.client("s3")

    def secret_values(self, names: Sequence[str]) -> list[str]:
        """``SecretValues``: the values behind ``--secret`` names, to mask them in the output (decision 1901)."""
        from runvoy_aws.secrets import read_values

        refs = self.compute._secret_resolver().resolve(list(names))
        return read_values(self.clients.client("ssm"), self.clients.client("secretsmanager"), refs)

    def default_image(self) -> str:
        """``DefaultImage``: what a run without ``--image`` runs (checked and pinned like any image)."""
        return self.config.image

    def registry_login(self, registry: str) -> tuple[str, str] | None:
        """``RegistryLogin``: ECR credentials (``AWS`` and a 12-hour token) for an ECR host of this or
        another account (that account's repository policy must allow us); None for any other host."""
        return self._ecr_login.login(registry)

    def setup(self, dry_run: bool = False) -> list[dict[str, Any]]:
        assert self.region is not None
        return AwsSetup(self.clients, self.config, self.region).run(dry_run)

    def describe_resources(self) -> dict[str, Any]:
        """Where to find a run's resources (for ``runvoy providers`` / docs)."""
        return {
            "region": self.region,
            "cluster": self.config.cluster,
            "log_group": self.config.log_group,
            "log_stream": f"{self.config.log_stream_prefix}/{self.config.container_name}/<task id>",
            "executions_table": self.config.executions_table,
            "locks_table": self.config.locks_table,
            "bucket": self.config.bucket,
        }

    def close(self) -> None:
        self.clients.close()


def create_provider(
    config: AwsConfig | dict[str, Any] | None = None, settings: Settings | None = None
) -> AwsProvider:
    if not isinstance(config, AwsConfig):
        config = AwsConfig.model_validate(config or {})
    return AwsProvider(config, settings)
