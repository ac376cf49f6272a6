"""Builds the Google clients (REST transports only) from the config. The only module that imports the
Google libraries at its top: the plugin and config modules never import it."""

from __future__ import annotations

import functools
from typing import Any

from runvoy_core.errors import ConfigError, ProviderUnavailable
from runvoy_core.ratelimit import PROCESS_LIMITS, Clock, RateLimits, TokenBucket
from runvoy_gcp.config import GcpConfig
from runvoy_gcp.quotas import PROVIDER, QUOTAS

PROCESS_LIMITS.declare(PROVIDER, QUOTAS)

INSTALL_HINT = "install it with: pip install 'runvoy[gcp]'"

try:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials, Credentials
    from google.cloud import logging as cloud_logging
    from google.cloud import run_v2, secretmanager, storage  # type: ignore[attr-defined]
except ImportError as exc:  # pragma: no cover - exercised by the packaging test in a bare venv
    raise ProviderUnavailable(
        f"the gcp provider needs the Google Cloud libraries ({exc.name} is not installed)", hint=INSTALL_HINT
    ) from None


def _options(endpoint: str | None) -> ClientOptions | None:
    return ClientOptions(api_endpoint=endpoint) if endpoint else None


class GcpClients:
    """Lazily built clients: resolving Application Default Credentials can be slow, and a command such as
    ``runvoy status`` may need only one of them."""

    def __init__(self, config: GcpConfig) -> None:
        self.config = config
        self._credentials: Credentials | None = None
        self._project: str | None = config.project
        self.limits: RateLimits = PROCESS_LIMITS
        """The buckets of this process (a test gives its own, on a manual clock)."""

    @property
    def clock(self) -> Clock:
        return self.limits.clock

    def limiter(self, service: str, project: str | None = None) -> TokenBucket:
        """The process's bucket for a quota of ``service`` in ``project`` (default: the configured one)."""
        self.limits.declare(PROVIDER, QUOTAS)
        return self.limits.limiter(
            PROVIDER, service, project or self.project, overrides=self.config.rate_limits
        )

    def _resolve(self) -> tuple[Credentials, str]:
        if self._credentials is None:
            if self.config.anonymous_credentials:
                self._credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
            else:
                import google.auth
                from google.auth.exceptions import DefaultCredentialsError

                try:
                    credentials, adc_project = google.auth.default(
                        scopes=["https://www.googleapis.com/auth/cloud-platform"]
                    )
                except DefaultCredentialsError as exc:
                    raise ConfigError(
                        f"no Google credentials found: {exc}".splitlines()[0],
                        hint="run: gcloud auth application-default login   (or set GOOGLE_APPLICATION_CREDENTIALS)",
                    ) from None
                self._credentials = credentials
                self._project = self._project or adc_project
        if not self._project:
            raise ConfigError(
                "no GCP project configured",
                hint="set it with RUNVOY_PROVIDERS__GCP__PROJECT=my-project or [providers.gcp] project = ...",
            )
        return self._credentials, self._project

    @property
    def project(self) -> str:
        return self._resolve()[1]

    @property
    def credentials(self) -> Credentials:
        return self._resolve()[0]

    @functools.cached_property
    def jobs(self) -> Any:
        return run_v2.JobsClient(
            transport="rest", credentials=self.credentials, client_options=_options(self.config.run_endpoint)
        )

    @functools.cached_property
    def executions(self) -> Any:
        return run_v2.ExecutionsClient(
            transport="rest", credentials=self.credentials, client_options=_options(self.config.run_endpoint)
        )

    @functools.cached_property
    def tasks(self) -> Any:
        return run_v2.TasksClient(
            transport="rest", credentials=self.credentials, client_options=_options(self.config.run_endpoint)
        )

    @functools.cached_property
    def logging(self) -> Any:
        options = {"api_endpoint": self.config.logging_endpoint} if self.config.logging_endpoint else None
        return cloud_logging.Client(  # type: ignore[no-untyped-call]
            project=self.project, credentials=self.credentials, _use_grpc=False, client_options=options
        )

    @functools.cached_property
    def storage(self) -> Any:
        return storage.Client(
            project=self.project,
            credentials=self.credentials,
            client_options=_options(self.config.storage_endpoint),
        )

    @functools.cached_property
    def secrets(self) -> Any:
        return secretmanager.SecretManagerServiceClient(
            transport="rest",
            credentials=self.credentials,
            client_options=_options(self.config.secretmanager_endpoint),
        )

    @property
    def bucket_name(self) -> str:
        return self.config.bucket or f"{self.project}-runvoy"

    def close(self) -> None:
        for name in ("jobs", "executions", "tasks", "secrets"):
            client = self.__dict__.pop(name, None)
            if client is not None:
                try:
                    client.transport.close()
                except Exception:
                    pass
        for name in ("storage", "logging"):
            client = self.__dict__.pop(name, None)
            http = getattr(client, "_http_internal", None) or getattr(client, "_http", None)
            if http is not None:
                try:
                    http.close()
                except Exception:
                    pass
