"""Google API errors as runvoy errors, and the retry policy for throttled or unavailable calls (the
quotas runvoy keeps to are in quotas.py).

Retries are ours (runvoy_core.ratelimit.retry_call), not the client library's: a retried *read* is always
safe, but a retried ``jobs:run`` is not (it is not idempotent), so compute decides what to re-check before
repeating a start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from runvoy_core.errors import ProviderError, RunvoyError, TransientProviderError
from runvoy_core.ratelimit import (
    SYSTEM_CLOCK,
    Clock,
    Retryable,
    RetryPolicy,
    TokenBucket,
    parse_retry_after,
    retry_call,
)

T = TypeVar("T")

TRANSIENT = (
    gexc.TooManyRequests,
    gexc.ResourceExhausted,
    gexc.ServiceUnavailable,
    gexc.InternalServerError,
    gexc.GatewayTimeout,
    gexc.DeadlineExceeded,
    gexc.BadGateway,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    auth_exc.TransportError,
)
THROTTLED = (gexc.TooManyRequests, gexc.ResourceExhausted)

RETRY_TOTAL = 10.0
"""Seconds one call may spend waiting on retries: a watcher must get back to its lock and its task."""

IAM_HINT = (
    "the credentials need roles/run.developer, roles/logging.viewer, roles/storage.objectAdmin on the bucket "
    "and roles/iam.serviceAccountUser on the job's service account (see providers/gcp/README.md)"
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


def translate(exc: BaseException, what: str) -> RunvoyError:
    """A one-line runvoy error for a failed Google call (never a traceback, never a request body)."""
    text = getattr(exc, "message", None) or str(exc)
    message = text.splitlines()[0] if text else type(exc).__name__
    if is_transient(exc):
        return TransientProviderError(f"{what}: {message}")
    if isinstance(exc, gexc.PermissionDenied | gexc.Unauthenticated | gexc.Forbidden | gexc.Unauthorized):
        return ProviderError(f"{what}: permission denied: {message}", hint=IAM_HINT)
    if isinstance(exc, auth_exc.GoogleAuthError):
        return ProviderError(
            f"{what}: authentication failed: {message}",
            hint="run: gcloud auth application-default login",
        )
    return ProviderError(f"{what}: {message}")


def retry_after_of(exc: BaseException) -> float | None:
    """The ``Retry-After`` of the HTTP answer behind a Google API error, if it had one."""
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        return parse_retry_after(headers.get("Retry-After"))
    except AttributeError:
        return None


def classify(exc: BaseException) -> Retryable | None:
    if not is_transient(exc):
        return None
    text = getattr(exc, "message", None) or str(exc)
    reason = text.splitlines()[0] if text else type(exc).__name__
    retry_after = retry_after_of(exc)
    throttled = isinstance(exc, THROTTLED) or retry_after is not None
    return Retryable(reason, retry_after, throttled=throttled)


def with_retry(
    fn: Callable[[], T],
    what: str,
    *,
    attempts: int,
    backoff: float,
    bucket: TokenBucket | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Call ``fn`` (which must be safe to repeat) through the core retry helper: a token from ``bucket``
    before each attempt, transient failures retried after the server's Retry-After or a jittered
    exponential backoff; in the end TransientProviderError."""
    policy = RetryPolicy(attempts=attempts, base_delay=backoff, max_delay=10.0, total=RETRY_TOTAL)
    return retry_call(fn, what=what, classify=classify, policy=policy, bucket=bucket, clock=clock)
