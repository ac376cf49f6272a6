"""The JSON error contract (decision 1501): every refusal is an HTTP status and
``{"error": {"code", "message", "hint", "request_id"}}``, where ``code`` is the error's ``docs_anchor`` so the
client raises the same class (``runvoy_core.errors.error_class``) with the same exit code. The status of each
class is decided here once (decision 1513); anything that is not a RunvoyError is ``internal`` and says nothing
but the request id."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runvoy_core import errors as e
from runvoy_core.ratelimit import RateLimited

INTERNAL = "internal"

# the first class of an error's MRO found here gives its status; RunvoyError itself is 500
STATUS: Mapping[type[e.RunvoyError], int] = {
    e.RequestTooLarge: 413,
    e.UnknownProvider: 422,
    e.UsageError: 422,  # ValidationFailed, AmbiguousId, CapabilityMissing, image references and policy...
    e.NotFound: 404,
    e.InvalidToken: 401,
    e.AccessDenied: 403,
    e.LockHeld: 409,  # LockTimeout too
    e.AlreadyExists: 409,
    e.VersionConflict: 409,
    e.StaleFence: 409,
    e.BudgetExceeded: 402,
    e.TooManyRequests: 429,
    e.RequestTimeout: 504,
    e.ServerUnavailable: 503,
    e.ProviderUnavailable: 503,
    RateLimited: 503,  # the server's own share of a cloud quota: the cloud, not the caller, is the limit
    e.ImageNotFound: 422,
    e.ImagePlatformMissing: 422,
    e.ImageCheckFailed: 502,  # the registry refused or did not answer
    e.ProviderError: 502,  # the cloud behind the server failed; its credentials are the server's, not the caller's
}


def status_of(error: e.RunvoyError) -> int:
    for cls in type(error).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def error_body(code: str, message: str, hint: str, request_id: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "hint": hint, "request_id": request_id or ""}
    body.update(extra)
    return {"error": body}


def body_of(error: e.RunvoyError, request_id: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    retry_after = error.details.get("retry_after")
    if isinstance(retry_after, int | float):
        extra["retry_after"] = retry_after
    return error_body(error.docs_anchor, error.message, error.hint, request_id, **extra)


def headers_of(error: e.RunvoyError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(error, e.InvalidToken):
        headers["WWW-Authenticate"] = 'Bearer realm="runvoy"'
    retry_after = error.details.get("retry_after")
    if isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, int(-(-retry_after // 1))))  # whole seconds, rounded up
    return headers


def internal_body(request_id: str | None) -> dict[str, Any]:
    return error_body(
        INTERNAL,
        "the runvoy server failed on this request",
        "try again; if it persists, give the server's admin this request id (its log has the details)",
        request_id,
    )


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
