"""boto3 session and clients, and the translation of botocore errors into RunvoyErrors.

Every client retries in botocore's adaptive mode (client-side rate limiting + exponential backoff) except
the one RunTask goes through: a botocore-level retry of RunTask after a read timeout could launch a second
task, so ``compute.py`` retries starts itself, looking the task up first.

Reads of the APIs with a published quota (quotas.py) take a token from the process's bucket first
(``AwsClients.read``), and a throttling error that gets past botocore's retries goes through the core retry
helper (runvoy_core.ratelimit.retry_call) before it becomes a TransientProviderError.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from runvoy_aws.config import AwsConfig
from runvoy_aws.quotas import PROVIDER, QUOTAS
from runvoy_core.errors import (
    ConfigError,
    NotAuthenticated,
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

try:
    import boto3
    import botocore.config
    import botocore.exceptions as bexc
    import botocore.loaders
    import botocore.session
except ImportError as _exc:  # pragma: no cover - exercised only without the extra installed
    raise ProviderUnavailable(
        f"the aws provider needs boto3 ({_exc})", hint="install it with: pip install 'runvoy[aws]'"
    ) from None

__all__ = ["AwsClients", "aws_call", "bexc", "error_code", "is_ambiguous", "is_transient", "translate"]

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | {
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
}
CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)
ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
MISSING_RESOURCE_CODES = frozenset(
    {"ClusterNotFoundException", "ResourceNotFoundException", "NoSuchBucket", "NoSuchEntity"}
)
IAM_ACTION_KEY = "RunvoyIamAction"
"""Set on a refused call's parsed ``Error`` by ``note_iam_action``: the IAM action of the operation."""
POLICY_DOCS = "providers/aws/README.md#minimal-iam-policy-for-the-identity-running-runvoy"
_PERFORM = re.compile(r"perform: ([a-z0-9-]+:[A-Za-z0-9*]+)")


T = TypeVar("T")

PROCESS_LIMITS.declare(PROVIDER, QUOTAS)
READ_POLICY = RetryPolicy(attempts=4, base_delay=0.5, max_delay=5.0, total=10.0)
"""On top of botocore's own attempts; ``total`` keeps a watcher's poll short of its lock's renewal."""

_shared_loader: Any = None
_loader_lock = threading.Lock()


def _botocore_session() -> Any:
    """A botocore session sharing one model loader per process: the service models (EC2's is megabytes of
    JSON) are parsed once even when several providers are created."""
    global _shared_loader
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = botocore.loaders.create_loader()
    session = botocore.session.get_session()
    session.register_component("data_loader", _shared_loader)
    return session


def error_code(exc: BaseException) -> str:
    if isinstance(exc, bexc.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def http_status(exc: BaseException) -> int:
    if isinstance(exc, bexc.ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx and network trouble: the operation may succeed when retried."""
    if isinstance(exc, bexc.ClientError):
        return error_code(exc) in TRANSIENT_CODES or http_status(exc) >= 500 or http_status(exc) == 429
    return isinstance(exc, bexc.ConnectionError | bexc.HTTPClientError)


def throttled(exc: BaseException) -> Retryable | None:
    """A throttling answer that got past botocore's retries (or a 503 that says when to come back): worth
    another try after a backoff. Anything else botocore already retried as much as it should."""
    if not isinstance(exc, bexc.ClientError):
        return None
    metadata = exc.response.get("ResponseMetadata", {})
    headers = metadata.get("HTTPHeaders") or {}
    retry_after = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
    code, status = error_code(exc), http_status(exc)
    if code in THROTTLING_CODES or status == 429 or (status == 503 and retry_after is not None):
        message = exc.response.get("Error", {}).get("Message", "")
        return Retryable(f"{code}: {message}".rstrip(": ") or f"HTTP {status}", retry_after)
    return None


def is_ambiguous(exc: BaseException) -> bool:
    """The request may have been carried out although we got no answer (read timeout, 5xx, dropped
    connection after sending). Throttling and connect failures are not: the server did not act."""
    if isinstance(exc, bexc.ClientError):
        if error_code(exc) in THROTTLING_CODES or http_status(exc) == 429:
            return False
        return http_status(exc) >= 500 or error_code(exc) in TRANSIENT_CODES
    if isinstance(exc, bexc.ConnectTimeoutError | bexc.EndpointConnectionError):
        return False
    return isinstance(exc, bexc.ConnectionError | bexc.HTTPClientError)


def translate(exc: BaseException, action: str) -> Exception:
    """A RunvoyError with one clear line for a botocore failure (never the traceback)."""
    if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError):
        return NotAuthenticated(
            f"{action}: no AWS credentials found",
            hint="configure them (aws configure / aws sso login), set AWS_PROFILE, or set providers.aws.profile",
        )
    if isinstance(exc, bexc.ProfileNotFound):
        return ConfigError(f"{action}: {exc}", hint="fix providers.aws.profile or AWS_PROFILE")
    if isinstance(exc, bexc.NoRegionError):
        return ConfigError(
            f"{action}: no AWS region configured",
            hint="set providers.aws.region, --region, or AWS_REGION",
        )
    if isinstance(exc, bexc.ClientError):
        code, message = error_code(exc), exc.response.get("Error", {}).get("Message", "")
        text = f"{action}: {code}: {message}".rstrip(": ")
        if is_transient(exc):
            return TransientProviderError(text, aws_code=code)
        if code in CREDENTIAL_CODES:
            return NotAuthenticated(
                text,
                hint="the AWS credentials are invalid or expired: refresh them (aws sso login, or aws configure)",
                aws_code=code,
            )
        if code in ACCESS_CODES:
            permission = iam_action(exc)
            return PermissionDenied(
                text,
                hint=f"allow the IAM action {permission} to the AWS identity running runvoy "
                f"(the whole minimal policy: {POLICY_DOCS})",
                aws_code=code,
                permission=permission,
            )
        if code in MISSING_RESOURCE_CODES:
            return ProviderError(
                text,
                hint="create what runvoy needs with: runvoy setup --provider aws   (--dry-run lists it first)",
                aws_code=code,
            )
        return ProviderError(text, aws_code=code)
    if is_transient(exc):
        return TransientProviderError(f"{action}: {type(exc).__name__}: {exc}")
    if isinstance(exc, bexc.BotoCoreError):
        return ProviderError(f"{action}: {exc}")
    return exc if isinstance(exc, Exception) else ProviderError(f"{action}: {exc}")


def iam_action(exc: BaseException) -> str:
    """The IAM action a refused call needed: as AWS's message names it, else the service's IAM prefix and
    the operation (``note_iam_action``), else the operation's name."""
    if not isinstance(exc, bexc.ClientError):
        return "?"
    error = exc.response.get("Error", {})
    found = _PERFORM.search(str(error.get("Message", "")))
    if found:
        return found.group(1)
    return str(error.get(IAM_ACTION_KEY) or exc.operation_name)


def note_iam_action(http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
    """botocore ``after-call`` handler: a refused call's error remembers its IAM action (the error a client
    raises knows the operation's name but not the service; the IAM prefix is the service's signing name)."""
    if http_response is None or http_response.status_code < 300 or not isinstance(parsed, dict):
        return
    error = parsed.get("Error")
    if isinstance(error, dict) and error.get("Code") in ACCESS_CODES and model is not None:
        error[IAM_ACTION_KEY] = f"{model.service_model.signing_name}:{model.name}"


@contextmanager
def aws_call(action: str) -> Iterator[None]:
    """Turn botocore failures inside the block into RunvoyErrors."""
    try:
        yield
    except (bexc.BotoCoreError, bexc.ClientError) as exc:
        raise translate(exc, action) from None


class AwsClients:
    """One boto3 session per provider; clients are created on first use and shared (boto3 clients are
    thread-safe, sessions are not: creation is serialised)."""

    def __init__(self, config: AwsConfig, region: str | None) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._handlers: list[tuple[str, Any]] = []
        try:
            self.session = boto3.session.Session(
                profile_name=config.profile, region_name=region, botocore_session=_botocore_session()
            )
        except bexc.BotoCoreError as exc:
            raise translate(exc, "AWS session") from None
        self.region: str | None = self.session.region_name
        self._retry_config = self._make_config(config.max_attempts)
        self._start_config = self._make_config(1)
        self.limits: RateLimits = PROCESS_LIMITS
        """The buckets of this process (a test gives its own, on a manual clock)."""

    @property
    def clock(self) -> Clock:
        return self.limits.clock

    def limiter(self, service: str) -> TokenBucket:
        """The process's bucket for ``service`` (quotas.py) in this client's Region."""
        self.limits.declare(PROVIDER, QUOTAS)
        return self.limits.limiter(PROVIDER, service, self.region or "", overrides=self.config.rate_limits)

    def read(self, service: str, action: str, fn: Callable[[], T]) -> T:
        """A read of a quota'd API: a token first, throttling retried with the core helper, botocore
        failures as RunvoyErrors (``fn`` may still raise a ClientError it wants its caller to see: the
        caller then catches it inside ``fn``)."""
        with aws_call(action):
            return retry_call(
                fn,
                what=action,
                classify=throttled,
                policy=READ_POLICY,
                bucket=self.limiter(service),
                clock=self.clock,
            )

    def _make_config(self, attempts: int) -> Any:
        return botocore.config.Config(
            retries={"mode": "adaptive", "total_max_attempts": attempts},
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout,
            user_agent_extra="runvoy",
            # one process may follow many runs from many threads (the shared poller, the server): botocore's
            # default pool of 10 would open and drop connections
            max_pool_connections=50,
        )

    def client(self, service: str, *, single_attempt: bool = False) -> Any:
        key = f"{service}:{'single' if single_attempt else 'retry'}"
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                try:
                    client = self.session.client(
                        service,
                        endpoint_url=self.config.endpoint_url,
                        config=self._start_config if single_attempt else self._retry_config,
                    )
                except bexc.BotoCoreError as exc:
                    raise translate(exc, f"AWS {service} client") from None
                client.meta.events.register("after-call", note_iam_action)
                for event, handler in self._handlers:
                    client.meta.events.register(event, handler)
                self._clients[key] = client
            return client

    def register(self, event: str, handler: Any) -> None:
        """A botocore event handler on every client, present and future (metrics, tests, the benchmark)."""
        with self._lock:
            self._handlers.append((event, handler))
            clients = list(self._clients.values())
        for client in clients:
            client.meta.events.register(event, handler)

    def all(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._clients)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                client.close()
            except Exception:  # closing is best effort
                pass
