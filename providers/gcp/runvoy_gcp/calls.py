"""Google API errors as runvoy errors, and the retry policy for throttled or unavailable calls.

Retries are ours, not the client library's: a retried *read* is always safe, but a retried ``jobs:run``
is not (it is not idempotent), so compute decides what to re-check before repeating a start."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from runvoy_core.errors import ProviderError, RunvoyError, TransientProviderError

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


def with_retry(fn: Callable[[], T], what: str, *, attempts: int, backoff: float) -> T:
    """Call ``fn`` (which must be safe to repeat), retrying transient failures with jittered exponential
    backoff; after the last attempt raise TransientProviderError."""
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except TRANSIENT as exc:
            if attempt == attempts:
                raise translate(exc, what) from None
            time.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")
