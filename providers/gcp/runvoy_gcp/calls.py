"""Google API errors as runvoy errors, and the retry policy for throttled or unavailable calls (the
quotas runvoy keeps to are in quotas.py).

Retries are ours (runvoy_core.ratelimit.retry_call), not the client library's: a retried *read* is always
safe, but a retried ``jobs:run`` is not (it is not idempotent), so compute decides what to re-check before
repeating a start."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from runvoy_core.errors import (
    NotAuthenticated,
    PermissionDenied,
    ProviderError,
    RunvoyError,
    TransientProviderError,
)
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
ROLES = (
    # (permission prefix, words of a call's description, the predefined role that grants it, where)
    (
        "iam.serviceAccounts.",
        "service account",
        "roles/iam.serviceAccountUser",
        "on the job's service account",
    ),
    ("run.", "cloud run", "roles/run.developer", "on the project"),
    ("logging.", "logging", "roles/logging.viewer", "on the project"),
    ("secretmanager.", "secret manager", "roles/secretmanager.viewer", "on the project"),
    ("storage.", "gs://", "roles/storage.objectAdmin", "on the bucket"),
    ("storage.", "gcs", "roles/storage.objectAdmin", "on the bucket"),
)
_PERMISSION = re.compile(
    r"\b((?:run|logging|storage|iam|secretmanager)\.(?!googleapis)[A-Za-z]+\.[A-Za-z]+)\b"
)
_DISABLED_API = re.compile(r"\b([a-z]+\.googleapis\.com)\b")


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


def translate(exc: BaseException, what: str) -> RunvoyError:
    """A one-line runvoy error for a failed Google call (never a traceback, never a request body)."""
    text = getattr(exc, "message", None) or str(exc)
    message = text.splitlines()[0] if text else type(exc).__name__
    if is_transient(exc):
        return TransientProviderError(f"{what}: {message}")
    if isinstance(exc, gexc.Unauthenticated | gexc.Unauthorized):
        return NotAuthenticated(
            f"{what}: not authenticated: {message}",
            hint="run: gcloud auth application-default login (or set GOOGLE_APPLICATION_CREDENTIALS)",
        )
    if isinstance(exc, gexc.PermissionDenied | gexc.Forbidden):
        if "SERVICE_DISABLED" in text or "has not been used in project" in text:
            api = _DISABLED_API.search(text)
            name = api.group(1) if api else "the API named above"
            return PermissionDenied(
                f"{what}: API disabled: {message}",
                hint=f"enable it: gcloud services enable {name}",
                permission=f"serviceusage.services.enable ({name})",
            )
        permission, role = role_for(text, what)
        return PermissionDenied(
            f"{what}: permission denied: {message}",
            hint=f"grant {role} to the identity running runvoy (it holds the permission {permission}); "
            "every role runvoy needs: providers/gcp/README.md",
            permission=permission,
        )
    if isinstance(exc, auth_exc.GoogleAuthError):
        return NotAuthenticated(
            f"{what}: authentication failed: {message}",
            hint="run: gcloud auth application-default login",
        )
    return ProviderError(f"{what}: {message}")


def role_for(text: str, what: str) -> tuple[str, str]:
    """The permission a refused call needed (as Google's message names it, else the call's service) and
    the predefined role that grants it, with where to grant it."""
    found = _PERMISSION.search(text)
    lowered = what.lower()
    for prefix, words, role, where in ROLES:
        if (found and found.group(1).startswith(prefix)) or (not found and words in lowered):
            return (found.group(1) if found else f"{prefix}*"), f"{role} {where}"
    return (found.group(1) if found else "?"), IAM_HINT.removeprefix("the credentials need ")


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
