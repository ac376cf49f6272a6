"""The azure provider: Container Instances + ACI logs archived to Blob storage + Table storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runvoy_azure.archive import BlobArchive
from runvoy_azure.clients import AzureClients
from runvoy_azure.compute import AciCompute
from runvoy_azure.config import AzureConfig
from runvoy_azure.logs import AciLogs
from runvoy_azure.register import TableLockRegister
from runvoy_azure.secrets import SecretResolver
from runvoy_azure.setup import AzureSetup
from runvoy_azure.store import TableStore
from runvoy_core.config import Settings


class AzureProvider:
    name = "azure"

    def __init__(self, config: AzureConfig, settings: Settings | None = None) -> None:
        self.config = config
        self.region: str | None = config.location
        # ACI answers a GET in ~100 ms; polling much faster only spends the ARM read quota
        self.poll_interval_min = config.poll_interval_min
        self.poll_interval_max: float | None = None  # the user's poll_interval_max
        self.clients = AzureClients(config)
        archive = BlobArchive(self.clients)
        self.logs = AciLogs(self.clients, config, archive)
        self._secrets = SecretResolver(self.clients)
        self.compute = AciCompute(self.clients, config, self.logs, archive, self._secrets)
        self.store = TableStore(self.clients, config.executions_table)
        self.locks = TableLockRegister(self.clients, config.locks_table)

    def secret_values(self, names: Sequence[str]) -> list[str]:
        """``SecretValues``: the values behind ``--secret`` names (Key Vault or ``secret_values``), read again
        only to mask them in the output (decision 1901)."""
        return list(self._secrets.resolve(list(names)).values())

    def default_image(self) -> str:
        """``DefaultImage``: what a run without ``--image`` runs (checked and pinned like any image)."""
        return self.config.default_image

    def registry_login(self, registry: str) -> tuple[str, str] | None:
        """``RegistryLogin``: the configured username and password (from Key Vault) of an ACR host."""
        from runvoy_azure.registries import registry_login

        return registry_login(registry, self.config, self._secrets)

    def setup(self, dry_run: bool = False) -> list[dict[str, Any]]:
        return AzureSetup(self.clients, self.config).run(dry_run)

    def describe_resources(self) -> dict[str, Any]:
        return {
            "subscription_id": self.config.subscription_id,
            "resource_group": self.config.resource_group,
            "location": self.config.location,
            "container_groups": "runvoy-<execution id> (tag runvoy-execution)",
            "executions_table": self.config.executions_table,
            "locks_table": self.config.locks_table,
            "log_archive": f"{self.config.logs_container}/logs/runvoy-<execution id>.log",
        }

    def close(self) -> None:
        self.clients.close()


def create_provider(
    config: AzureConfig | dict[str, Any] | None = None, settings: Settings | None = None
) -> AzureProvider:
    if not isinstance(config, AzureConfig):
        config = AzureConfig.model_validate(config or {})
    if "location" not in config.model_fields_set and settings is not None and settings.region:
        config = config.model_copy(
            update={"location": settings.region}
        )  # the global --region / RUNVOY_REGION
    return AzureProvider(config, settings)
