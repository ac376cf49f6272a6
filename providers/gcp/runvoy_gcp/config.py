"""The ``[providers.gcp]`` configuration section. Imports no Google library (only pydantic)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runvoy_core.images.config import registry_host

DEFAULT_IMAGE = "python:3.12-slim"
"""Docker Hub's official ``python`` image (Cloud Run pulls Docker Hub images directly); it has ``/bin/sh``,
which runs the shell command. Override per run with ``--image`` or here with ``image``."""

_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
REMOTE_REPOSITORY = re.compile(
    r"^[a-z0-9-]{2,40}-docker\.pkg\.dev/[a-z][a-z0-9-]{4,28}[a-z0-9]/[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
)
"""An Artifact Registry Docker repository: ``LOCATION-docker.pkg.dev/PROJECT/REPOSITORY``."""
REGISTRY_REMOTES_MAX = 64


class GcpConfig(BaseModel):
    """With Application Default Credentials (``gcloud auth application-default login`` or a service account)
    and ``runvoy setup --provider gcp`` run once, ``runvoy --provider gcp run ...`` works."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    project: str | None = Field(
        default=None, description="GCP project id; None = the project of Application Default Credentials"
    )
    region: str = Field(default="us-central1", description="Cloud Run region (jobs are regional)")
    bucket: str | None = Field(
        default=None,
        description="GCS bucket for execution records, locks and log archives; None = '<project>-runvoy'",
    )
    bucket_prefix: str = Field(default="runvoy/", description="object name prefix inside the bucket")
    service_account: str | None = Field(
        default=None, description="email of the service account the job runs as; None = the default one"
    )
    job_prefix: str = Field(default="runvoy", description="Cloud Run job names are '<prefix>-<content hash>'")
    image: str = DEFAULT_IMAGE
    registry_remotes: dict[str, str] = Field(
        default_factory=dict,
        description="registry host -> Artifact Registry remote repository (LOCATION-docker.pkg.dev/PROJECT/"
        "REPOSITORY) that fronts it: images of that registry run through the repository, which holds the "
        "registry's credentials in Secret Manager (Cloud Run takes no registry credentials itself)",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="added to every job runvoy creates")
    default_timeout: float = Field(
        default=86400.0,
        gt=0,
        le=168 * 3600,
        description="task timeout (seconds) when a run gives none; Cloud Run's own default is 10 minutes",
    )
    run_endpoint: str | None = Field(
        default=None, description="Cloud Run Admin API endpoint (tests, proxies)"
    )
    logging_endpoint: str | None = Field(default=None, description="Cloud Logging API endpoint")
    storage_endpoint: str | None = Field(default=None, description="Cloud Storage endpoint")
    secretmanager_endpoint: str | None = Field(default=None, description="Secret Manager API endpoint")
    anonymous_credentials: bool = Field(
        default=False, description="send no credentials (local fakes and emulators only)"
    )
    check_secrets: bool = Field(
        default=True, description="check that each secret exists in Secret Manager before starting"
    )
    request_timeout: float = Field(default=30.0, gt=0, le=600, description="seconds per API call")
    retry_attempts: int = Field(
        default=6, ge=1, le=20, description="attempts for throttled/unavailable calls"
    )
    retry_backoff: float = Field(
        default=0.5, ge=0, le=60, description="first retry delay in seconds (then doubles)"
    )
    rate_limits: dict[str, float] = Field(
        default_factory=dict,
        description="requests per second runvoy allows itself per API (logging.entries.list), instead of "
        "its share of the published quota: after a quota increase, or to leave room for other clients",
    )

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, value: dict[str, float]) -> dict[str, float]:
        from runvoy_core.ratelimit import check_rate_limits
        from runvoy_gcp.quotas import QUOTAS

        return check_rate_limits(value, QUOTAS)

    @field_validator("registry_remotes")
    @classmethod
    def _registry_remotes(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > REGISTRY_REMOTES_MAX:
            raise ValueError(f"at most {REGISTRY_REMOTES_MAX} registries")
        normalised: dict[str, str] = {}
        for host, repository in value.items():
            key = registry_host(host)
            if host.endswith(".pkg.dev") or host == "gcr.io" or host.endswith(".gcr.io"):
                raise ValueError(
                    f"{host!r} is Google's own registry: the job's service account pulls from it"
                )
            if not REMOTE_REPOSITORY.match(repository):
                raise ValueError(
                    f"registry {host!r}: {repository[:120]!r} is not an Artifact Registry repository "
                    "(LOCATION-docker.pkg.dev/PROJECT/REPOSITORY)"
                )
            if key in normalised:
                raise ValueError(f"{host!r} names the same registry as another entry")
            normalised[key] = repository
        return normalised

    @field_validator("job_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(
                f"{value!r} must start with a lowercase letter and use lowercase letters, digits and '-' "
                "(at most 31 characters)"
            )
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not _BUCKET.match(value):
            raise ValueError(f"{value!r} is not a valid GCS bucket name")
        return value

    @field_validator("bucket_prefix")
    @classmethod
    def _bucket_prefix(cls, value: str) -> str:
        value = value.strip("/")
        return f"{value}/" if value else ""

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                raise ValueError(
                    f"label {key}={value}: GCP labels are lowercase letters, digits, '_' and '-' "
                    "(keys start with a letter; at most 63 characters)"
                )
            if key in ("managed-by", "runvoy-hash"):
                raise ValueError(f"label {key!r} is set by runvoy itself")
        return labels

    @field_validator("run_endpoint", "logging_endpoint", "storage_endpoint", "secretmanager_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+(/.*)?$", value):
            raise ValueError(f"{value!r} must be a URL such as https://run.googleapis.com")
        return value.rstrip("/") if value else value
