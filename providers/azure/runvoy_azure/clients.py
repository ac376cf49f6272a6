"""Builds the Azure SDK clients (lazily, once) and turns SDK exceptions into runvoy errors.

The SDK is imported here and in the port modules, never by the plugin or config module.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from runvoy_azure.config import AzureConfig
from runvoy_azure.quotas import ARM_READS, PROVIDER, QUOTAS
from runvoy_core.errors import (
    ConfigError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    ProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
from runvoy_core.ratelimit import (
    PROCESS_LIMITS,
    Clock,
    RateLimits,
    Retryable,
    RetryPolicy,
    TokenBucket,
    parse_retry_after,
    retry_call,
)

T = TypeVar("T")
PROCESS_LIMITS.declare(PROVIDER, QUOTAS)
READ_TOTAL = 10.0
"""Seconds one read may spend waiting on retries: a watcher must get back to its lock and its task."""

INSTALL_HINT = "install it with: pip install 'runvoy[azure]'"
ROLES = (
    # (words of a call's description or of the refused action, the built-in role that grants it, where)
    ("microsoft.containerinstance", "Contributor", "on the resource group"),
    ("container group", "Contributor", "on the resource group"),
    ("key vault", "Key Vault Secrets User", "on the key vault"),
    ("microsoft.keyvault", "Key Vault Secrets User", "on the key vault"),
    ("blob", "Storage Blob Data Contributor", "on the storage account"),
    ("final state", "Storage Blob Data Contributor", "on the storage account"),
    (
        "microsoft.storage/storageaccounts/blobservices",
        "Storage Blob Data Contributor",
        "on the storage account",
    ),
    (
        "microsoft.storage/storageaccounts/tableservices",
        "Storage Table Data Contributor",
        "on the storage account",
    ),
    ("table", "Storage Table Data Contributor", "on the storage account"),
    ("record", "Storage Table Data Contributor", "on the storage account"),
    ("lock", "Storage Table Data Contributor", "on the storage account"),
    ("rollup", "Storage Table Data Contributor", "on the storage account"),
    ("execution", "Storage Table Data Contributor", "on the storage account"),
    ("layout", "Storage Table Data Contributor", "on the storage account"),
    ("microsoft.", "Contributor", "on the resource group"),
)
_ACTION = re.compile(r"perform action '([^']+)'")
ROLES_HINT = (
    "the identity needs 'Contributor' on the resource group (or a custom role with "
    "Microsoft.ContainerInstance/containerGroups/*), 'Storage Table Data Contributor' and "
    "'Storage Blob Data Contributor' on the storage account; see providers/azure/README.md"
)

try:
    from azure.core import exceptions as azexc
    from azure.core.credentials import AccessToken
    from azure.core.pipeline.policies import SansIOHTTPPolicy
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ProviderUnavailable(
        f"the azure provider needs the Azure SDK ({exc.name})", hint=INSTALL_HINT
    ) from None


class StaticTokenCredential:
    """A credential for endpoints that accept any bearer token (the in-repo ARM fake)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", int(time.time()) + 3600)

    def close(self) -> None:
        return None


class AllowPlainHttp(SansIOHTTPPolicy[Any, Any]):
    """Bearer tokens are refused over http unless the request says otherwise: custom endpoints only."""

    def on_request(self, request: Any) -> None:
        request.context["enforce_https"] = False


class AzureClients:
    def __init__(self, config: AzureConfig) -> None:
        self.config = config
        self._credential: Any = None
        self._aci: Any = None
        self._tables: Any = None
        self._blobs: Any = None
        self._secrets: Any = None
        self.limits: RateLimits = PROCESS_LIMITS
        """The buckets of this process (a test gives its own, on a manual clock)."""

    # -- quotas and retries ---------------------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self.limits.clock

    def limiter(self, service: str = ARM_READS) -> TokenBucket:
        self.limits.declare(PROVIDER, QUOTAS)
        return self.limits.limiter(
            PROVIDER, service, self.config.subscription_id or "", overrides=self.config.rate_limits
        )

    def read_policy(self, attempts: int | None = None) -> RetryPolicy:
        return RetryPolicy(
            attempts=attempts or self.config.retry_total + 1,
            base_delay=self.config.retry_backoff,
            max_delay=10.0,
            total=READ_TOTAL,
        )

    def arm_read(self, what: str, fn: Callable[[], T]) -> T:
        """An ARM read: a token from the subscription's bucket, then ``fn`` (which must call the SDK with
        ``retry_total=0``: the core helper, not the SDK's policy, retries it, on the injectable clock and
        holding the bucket for a Retry-After)."""
        with azure_call(what):
            return retry_call(
                fn,
                what=what,
                classify=retryable,
                policy=self.read_policy(),
                bucket=self.limiter(ARM_READS),
                clock=self.clock,
            )

    # -- credentials ----------------------------------------------------------------------------------------
    @property
    def credential(self) -> Any:
        if self._credential is None:
            if self.config.credential == "fake":
                self._credential = StaticTokenCredential()
            else:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
        return self._credential

    def _arm_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self.config.arm_base_url,
            "polling_interval": self.config.polling_interval,
            "retry_total": self.config.retry_total,
            "retry_backoff_factor": self.config.retry_backoff,
        }
        if self.config.uses_plain_http:
            kwargs["per_call_policies"] = [AllowPlainHttp()]
        return kwargs

    @property
    def subscription_id(self) -> str:
        if not self.config.subscription_id:
            raise ConfigError(
                "no subscription_id configured for the azure provider",
                hint="set providers.azure.subscription_id in the config file or RUNVOY_PROVIDERS__AZURE__SUBSCRIPTION_ID",
            )
        return self.config.subscription_id

    @property
    def aci(self) -> Any:
        if self._aci is None:
            from azure.mgmt.containerinstance import ContainerInstanceManagementClient

            self._aci = ContainerInstanceManagementClient(
                self.credential, self.subscription_id, **self._arm_kwargs()
            )
        return self._aci

    # -- storage --------------------------------------------------------------------------------------------
    def _storage_endpoint(self, kind: str) -> str:
        explicit = self.config.blob_endpoint if kind == "blob" else self.config.table_endpoint
        if explicit:
            return explicit
        if not self.config.storage_account:
            raise ConfigError(
                "no storage configured for the azure provider",
                hint="set providers.azure.storage_account (or storage_connection_string)",
            )
        return f"https://{self.config.storage_account}.{kind}.core.windows.net"

    def _storage_kwargs(self) -> dict[str, Any]:
        return {"retry_total": self.config.retry_total, "retry_backoff_factor": self.config.retry_backoff}

    @property
    def tables(self) -> Any:
        if self._tables is None:
            from azure.data.tables import TableServiceClient

            conn = self.config.storage_connection_string
            kwargs = self._storage_kwargs()
            if conn is not None:
                self._tables = TableServiceClient.from_connection_string(conn.get_secret_value(), **kwargs)
            else:
                self._tables = TableServiceClient(
                    self._storage_endpoint("table"), credential=self.credential, **kwargs
                )
        return self._tables

    @property
    def blobs(self) -> Any:
        if self._blobs is None:
            from azure.storage.blob import BlobServiceClient

            conn = self.config.storage_connection_string
            kwargs = self._storage_kwargs()
            if conn is not None:
                self._blobs = BlobServiceClient.from_connection_string(conn.get_secret_value(), **kwargs)
            else:
                self._blobs = BlobServiceClient(
                    self._storage_endpoint("blob"), credential=self.credential, **kwargs
                )
        return self._blobs

    @property
    def secrets(self) -> Any:
        if self._secrets is None:
            if not self.config.key_vault_url:
                raise ConfigError(
                    "secrets were requested but no key_vault_url is configured for the azure provider",
                    hint="set providers.azure.key_vault_url, or providers.azure.secret_values for local use",
                )
            from azure.keyvault.secrets import SecretClient

            self._secrets = SecretClient(
                self.config.key_vault_url,
                self.credential,
                verify_challenge_resource=self.config.key_vault_verify_challenge,
                **self._storage_kwargs(),
            )
        return self._secrets

    def close(self) -> None:
        for client in (self._aci, self._tables, self._blobs, self._secrets, self._credential):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()


def retryable(exc: BaseException) -> Retryable | None:
    """Throttling (429), 5xx and no answer are worth another try; a Retry-After is honoured."""
    if isinstance(exc, azexc.ServiceRequestError | azexc.ServiceResponseError):
        return Retryable(f"no answer from Azure ({type(exc).__name__})", throttled=False)
    status = status_of(exc)
    if not isinstance(exc, azexc.HttpResponseError) or status is None:
        return None
    if status != 429 and status < 500:
        return None
    response: Any = getattr(exc, "response", None)
    headers: Any = getattr(response, "headers", None) or {}
    retry_after = parse_retry_after(headers.get("Retry-After"))
    return Retryable(
        f"Azure answered {status} ({error_message(exc)})", retry_after, throttled=status in (429, 503)
    )


def status_of(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, azexc.ResourceNotFoundError) or status_of(exc) == 404


def error_message(exc: BaseException) -> str:
    """The service's one-line reason (ARM's ``error.message``), without the SDK's multi-line dump."""
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    code = getattr(error, "code", None)
    first = str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__
    return f"{code}: {first}" if code and code not in first else first


SIGN_IN_HINT = (
    "sign in (az login), set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or use a managed identity"
)


def role_for(message: str, what: str) -> tuple[str | None, str]:
    """The action Azure refused (ARM's AuthorizationFailed names it), and which built-in role to assign
    where; without a named action, the role the call's service needs."""
    found = _ACTION.search(message)
    action = found.group(1) if found else None
    subject = (action or what).lower()
    for words, role, where in ROLES:
        if words in subject:
            return action, f"'{role}' {where}"
    return action, "'Contributor' on the resource group"


AUTHENTICATION_CODES = frozenset(
    {"AuthenticationFailed", "InvalidAuthenticationInfo", "InvalidAuthenticationToken"}
)


def refusal(exc: BaseException, what: str) -> ProviderError:
    """A 401 or 403: credentials Azure did not accept (a wrong storage key, an expired token, no sign-in),
    or an identity without the role for this call (ARM's AuthorizationFailed, storage's
    AuthorizationPermissionMismatch)."""
    error = getattr(exc, "error", None)
    raw = getattr(exc, "error_code", None) or getattr(error, "code", None) or ""
    code = str(getattr(raw, "value", raw))  # the storage SDKs' codes are enums
    if status_of(exc) != 403 or code in AUTHENTICATION_CODES:
        return NotAuthenticated(
            f"{what}: Azure authentication failed ({error_message(exc)})", hint=SIGN_IN_HINT
        )
    action, role = role_for(error_message(exc), what)
    return PermissionDenied(
        f"{what}: not authorized ({error_message(exc)})",
        hint=f"assign the role {role} to the identity running runvoy"
        + (f" (it allows {action})" if action else "")
        + ("; with storage_connection_string, check its account key" if "Storage" in role else "")
        + "; every role runvoy needs: providers/azure/README.md",
        permission=action or role,
    )


@contextlib.contextmanager
def azure_call(what: str) -> Iterator[None]:
    """Map SDK exceptions to runvoy errors that carry a hint (throttling and 5xx become transient)."""
    try:
        yield
    except azexc.ClientAuthenticationError as exc:
        raise refusal(exc, what) from None
    except (azexc.ServiceRequestError, azexc.ServiceResponseError) as exc:
        raise TransientProviderError(f"{what}: no answer from Azure ({type(exc).__name__})") from None
    except azexc.HttpResponseError as exc:
        status = status_of(exc)
        if status == 429 or (status is not None and status >= 500):
            raise TransientProviderError(f"{what}: Azure answered {status} ({error_message(exc)})") from None
        if status in (401, 403):
            raise refusal(exc, what) from None
        if status == 404:
            raise NotFound(
                f"{what}: not found ({error_message(exc)})",
                hint="create the resources with: runvoy setup --provider azure",
            ) from None
        raise ProviderError(f"{what}: {error_message(exc)}") from None
