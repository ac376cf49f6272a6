"""Request bodies up to ``[serve] body_limit`` bytes; a larger one is refused with 413 before any of it reaches
a route. The body is read here first (it is small by construction) and handed on as it came: a check on the
stream's chunks inside the route would be turned into a 400 by FastAPI's body parsing."""

from __future__ import annotations

from runvoy_core.errors import RequestTooLarge
from runvoy_server.middleware.asgi import App, Message, Receive, Scope, Send, header


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"the request body is larger than this server accepts ({limit} bytes)")


class BodyLimitMiddleware:
    def __init__(self, app: App, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            raise too_large(self.limit)
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the route sees it as it would have
            size += len(message.get("body", b""))
            if size > self.limit:
                raise too_large(self.limit)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            # the body as read, then the live channel (a streaming route waits on it for the disconnect)
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
