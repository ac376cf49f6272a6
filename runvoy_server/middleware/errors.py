"""The last line of defence: a RunvoyError raised outside a route (authentication, limits) becomes its JSON
error; anything else becomes a 500 with code ``internal`` and the request id only, its traceback logged on
the server. One access line per request is logged here too (method, path without the query, status, time)."""

from __future__ import annotations

import re
import time
import traceback

from runvoy_core.errors import RunvoyError
from runvoy_core.logging import get_logger
from runvoy_server.errors import internal_body
from runvoy_server.middleware.asgi import (
    App,
    Message,
    Receive,
    Scope,
    Send,
    request_id_of,
    send_error,
    send_json,
)

log = get_logger("runvoy.server")
_API_KEY = re.compile(r"(rvk_[0-9a-f]{16}_)[A-Za-z0-9_-]+")


def redacted(text: str) -> str:
    """``text`` with the secret part of any API key in it masked (an exception's message may quote one)."""
    return _API_KEY.sub(r"\1[redacted]", text)


class ErrorMiddleware:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except RunvoyError as exc:
            if status:
                _log("warning", "server.stream_failed", error=type(exc).__name__, message=exc.message)
            else:
                status = await send_error(send, scope, exc)
        except Exception as exc:
            details = redacted(traceback.format_exc())
            if not status:
                status = 500
                await send_json(send, 500, internal_body(request_id_of(scope)))
            _log(
                "error",
                "server.internal_error",
                error=type(exc).__name__,
                path=scope.get("path"),
                traceback=details,
            )
        finally:
            _log(
                "info",
                "server.request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                ms=round((time.monotonic() - started) * 1000, 1),
            )


def _log(level: str, event: str, **fields: object) -> None:
    """A log line that cannot fail the request (a closed or full stderr is the log's problem, not the client's)."""
    try:
        if level == "error":
            log.error(event, **fields)
        elif level == "warning":
            log.warning(event, **fields)
        else:
            log.info(event, **fields)
    except Exception:
        pass
