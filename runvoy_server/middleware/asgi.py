"""Small ASGI helpers the middleware share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from runvoy_core.errors import RunvoyError
from runvoy_server.errors import body_of, encode, headers_of, status_of

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as latin-1 text (what HTTP/1.1 carries)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    found = state.get("request_id")
    return found if isinstance(found, str) else None


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = encode(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def send_error(send: Send, scope: Scope, error: RunvoyError) -> int:
    status = status_of(error)
    await send_json(send, status, body_of(error, request_id_of(scope)), headers_of(error))
    return status
