"""The gcp provider: Cloud Run jobs (compute), Cloud Logging (logs), GCS (records, locks, log archive)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runvoy_core.config import Settings
from runvoy_gcp.clients import GcpClients
from runvoy_gcp.compute import CloudRunCompute
from runvoy_gcp.config import GcpConfig
from runvoy_gcp.logs import CloudLoggingLogs
from runvoy_gcp.objects import ObjectStore
from runvoy_gcp.register import GcsLockRegister
from runvoy_gcp.registries import AccessTokenLogin
from runvoy_gcp.store import GcsExecutionStore


class GcpProvider:
    name = "gcp"

    def __init__(self, config: GcpConfig, settings: Settings | None = None) -> None:
        self.config = config
        self.settings = settings
        self.region: str | None = config.region
        self.clients = GcpClients(config)
        objects = ObjectStore(config, self.clients)
        self.compute = CloudRunCompute(config, self.clients, settings.images if settings else None)
        self.logs = CloudLoggingLogs(config, self.clients, prefix=config.bucket_prefix)
        self.store = GcsExecutionStore(objects)
        self.locks = GcsLockRegister(objects)
        self._registry_login = AccessTokenLogin(lambda: self.clients.credentials)

    def secret_values(self, names: Sequence[str]) -> list[str]:
        """``SecretValues``: the values behind ``--secret`` names (the version the run named, ``latest`` when
        none), read only to mask them in the output (decision 1901); needs ``secretmanager.versions.access``."""
        from runvoy_gcp.calls import translate
        from runvoy_gcp.secrets import parse_secrets

        values = []
        for ref in parse_secrets(list(names)):
            name = f"{ref.resource_name(self.clients.project)}/versions/{ref.version}"
            try:
                answer = self.clients.secrets.access_secret_version(name=name)
            except Exception as exc:
                raise translate(exc, "read a secret's value to mask it in the output") from None
            values.append(bytes(answer.payload.data).decode("utf-8", errors="replace"))
        return values

    def default_image(self) -> str:
        """``DefaultImage``: what a run without ``--image`` runs (checked and pinned like any image)."""
        return self.config.image

    def registry_login(self, registry: str) -> tuple[str, str] | None:
        """``RegistryLogin``: an OAuth access token of this provider's credentials for Artifact Registry and
        Container Registry hosts (username ``oauth2accesstoken``); None for any other host."""
        return self._registry_login.login(registry)

    def setup(self, dry_run: bool = False) -> list[dict[str, Any]]:
        from runvoy_gcp.setup import run_setup

        return run_setup(self.config, self.clients, dry_run)

    def close(self) -> None:
        self.store.close()
        self.clients.close()


def create_provider(config: GcpConfig, settings: Settings | None = None) -> GcpProvider:
    if settings is not None and settings.region and "region" not in config.model_fields_set:
        config = config.model_copy(update={"region": settings.region})
    return GcpProvider(config, settings)
