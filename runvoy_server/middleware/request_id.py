"""``X-Request-ID``: taken from the request when it has a bounded form, else made; echoed on the response and
bound for the request, so every log line, record and audit entry of it carries it (runvoy_core.logging)."""

from __future__ import annotations

import re

from runvoy_core.logging import bound_request_id, new_request_id
from runvoy_server.middleware.asgi import App, Message, Receive, Scope, Send, header

REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""What a client's id may be: 1-128 of letters, digits and . _ : - (a UUID, a trace id, req-...). Anything
else (too long, spaces, control characters) is replaced, never echoed."""


def accepted(given: str | None) -> str:
    return given if given is not None and REQUEST_ID.fullmatch(given) else new_request_id()


class RequestIdMiddleware:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted(header(scope, b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", echoed)]
            await send(message)

        with bound_request_id(request_id):
            await self.app(scope, receive, send_with_id)
