"""The ``[providers.azure]`` section. Pydantic only: importing this module imports no Azure SDK."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from runvoy_core.images.config import registry_host

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")

DEFAULT_IMAGE = "mcr.microsoft.com/cbl-mariner/busybox:2.0"

REGISTRY_CREDENTIALS_MAX = 64
_USERNAME = re.compile(r"^[\x21-\x7e]{1,256}$")
_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_IDENTITY = re.compile(
    r"^/subscriptions/[0-9A-Fa-f-]{36}/resourceGroups/[-\w._()]{1,90}/providers/"
    r"Microsoft\.ManagedIdentity/userAssignedIdentities/[A-Za-z0-9][A-Za-z0-9_-]{2,127}$",
    re.IGNORECASE,
)


class RegistryLogin(BaseModel):
    """How ACI pulls from one registry (``imageRegistryCredentials``): a username and the name of the secret
    holding the password (in Key Vault, or ``secret_values`` without a vault), or, for ACR only, a
    user-assigned managed identity with the ``AcrPull`` role on the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str | None = None
    password_secret: str | None = Field(
        default=None, description="Key Vault secret name (or a key of secret_values) holding the password"
    )
    identity: str | None = Field(
        default=None, description="resource id of a user-assigned managed identity (ACR only)"
    )

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None and not _USERNAME.match(value):
            raise ValueError("a username is 1-256 printable ASCII characters without spaces")
        return value

    @field_validator("password_secret")
    @classmethod
    def _password_secret(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_NAME.match(value):
            raise ValueError("a Key Vault secret name is 1-127 letters, digits and '-'")
        return value

    @field_validator("identity")
    @classmethod
    def _identity(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTITY.match(value):
            raise ValueError(
                "identity is the resource id of a user-assigned identity: /subscriptions/<id>/resourceGroups/"
                "<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
            )
        return value

    @model_validator(mode="after")
    def _one_way(self) -> RegistryLogin:
        pair = (self.username is None, self.password_secret is None)
        if pair[0] != pair[1]:
            raise ValueError("username and password_secret go together")
        if (self.identity is None) == (self.username is None):
            raise ValueError("give username and password_secret, or identity (one of the two)")
        return self


class AzureConfig(BaseModel):
    """Where runvoy puts things in Azure and how it authenticates.

    Credentials: ``credential = "default"`` uses ``DefaultAzureCredential`` (environment, workload identity,
    managed identity, Azure CLI...). ``"fake"`` sends a static token and is accepted only together with a
    custom ``arm_endpoint`` (it is how the tests reach the in-repo ARM fake).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    subscription_id: str | None = None
    resource_group: str = "runvoy"
    location: str = "eastus"
    arm_endpoint: str | None = Field(
        default=None, description="custom ARM endpoint (default https://management.azure.com)"
    )
    credential: Literal["default", "fake"] = "default"

    storage_account: str | None = Field(
        default=None, description="storage account name; its endpoints are derived from it"
    )
    storage_connection_string: SecretStr | None = Field(
        default=None, description="a connection string instead of storage_account (Azurite, account keys)"
    )
    blob_endpoint: str | None = None
    table_endpoint: str | None = None

    executions_table: str = "runvoyexecutions"
    locks_table: str = "runvoylocks"
    logs_container: str = "runvoy-logs"

    key_vault_url: str | None = None
    key_vault_verify_challenge: bool = Field(
        default=True,
        description="check that Key Vault's auth challenge names the vault's domain (turn off only for a "
        "vault behind a custom host name)",
    )
    secret_values: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="secret values by name, used when no Key Vault is configured (never stored in a record)",
    )

    registry_credentials: dict[str, RegistryLogin] = Field(
        default_factory=dict,
        description="registry host -> {username, password_secret} or {identity}: how the container group "
        "pulls that registry's images (imageRegistryCredentials)",
    )

    default_image: str = DEFAULT_IMAGE
    container_name: str = "main"
    max_cpu: float = Field(default=4.0, gt=0, le=16, description="the region's per-group vCPU limit")
    max_memory_gb: float = Field(
        default=16.0, gt=0, le=120, description="the region's per-group memory limit (GB)"
    )
    tags: dict[str, str] = Field(default_factory=dict, description="extra tags on every container group")

    polling_interval: float = Field(
        default=5.0, ge=0, le=300, description="seconds between long-running-operation polls"
    )
    retry_total: int = Field(default=6, ge=0, le=20, description="SDK retries for throttling (429) and 5xx")
    retry_backoff: float = Field(default=0.8, ge=0, le=60, description="SDK retry back-off factor (seconds)")
    rate_limits: dict[str, float] = Field(
        default_factory=dict,
        description="requests per second runvoy allows itself per API (arm.reads), instead of its share of "
        "the published quota (after a quota increase, or to leave room for other clients)",
    )
    poll_interval_min: float = Field(
        default=0.5, gt=0, le=60, description="first watch poll interval (seconds)"
    )
    create_timeout: float = Field(
        default=60.0, gt=0, le=600, description="client read timeout of the create call"
    )
    request_timeout: float = Field(
        default=30.0, gt=0, le=600, description="client read timeout of other calls"
    )

    @field_validator("executions_table", "locks_table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not _TABLE_NAME.match(value):
            raise ValueError(f"table name {value!r} must be 3-63 letters and digits, starting with a letter")
        return value

    @field_validator("registry_credentials")
    @classmethod
    def _registry_credentials(cls, value: dict[str, RegistryLogin]) -> dict[str, RegistryLogin]:
        if len(value) > REGISTRY_CREDENTIALS_MAX:
            raise ValueError(f"at most {REGISTRY_CREDENTIALS_MAX} registries")
        normalised: dict[str, RegistryLogin] = {}  # only to find two spellings of one registry
        for host, login in value.items():
            key = registry_host(host)
            if login.identity is not None and not host.lower().endswith(".azurecr.io"):
                raise ValueError(
                    f"registry {host!r}: a managed identity logs in to Azure Container Registry "
                    "(*.azurecr.io) only; give username and password_secret"
                )
            if key in normalised:
                raise ValueError(f"{host!r} names the same registry as another entry")
            normalised[key] = login
        # the host is kept as written: it is the ``server`` ACI is sent
        return value

    def registry_login(self, host: str) -> tuple[str, RegistryLogin] | None:
        """``(server as configured, login)`` for a registry host as references name it (``docker.io``)."""
        for server, login in self.registry_credentials.items():
            if server == host or (host == "docker.io" and server == "index.docker.io"):
                return server, login
        return None

    @field_validator("rate_limits")
    @classmethod
    def _rate_limits(cls, value: dict[str, float]) -> dict[str, float]:
        from runvoy_azure.quotas import QUOTAS
        from runvoy_core.ratelimit import check_rate_limits

        return check_rate_limits(value, QUOTAS)

    @field_validator("logs_container")
    @classmethod
    def _container_name(cls, value: str) -> str:
        if not _CONTAINER_NAME.match(value):
            raise ValueError(
                f"blob container name {value!r} must be 3-63 lowercase letters, digits and single hyphens"
            )
        return value

    @model_validator(mode="after")
    def _fake_only_with_custom_endpoint(self) -> AzureConfig:
        if self.credential == "fake" and not self.arm_endpoint:
            raise ValueError("credential 'fake' is only for a custom arm_endpoint (tests); use 'default'")
        return self

    @property
    def arm_base_url(self) -> str:
        return (self.arm_endpoint or "https://management.azure.com").rstrip("/")

    @property
    def uses_plain_http(self) -> bool:
        return self.arm_base_url.startswith("http://")
