"""``[serve] request_timeout``: a request whose response has not started by then gets a 504 JSON error.

The clock stops when the response starts, so a stream (a run attached over SSE, logs followed) lives as long
as it needs. A route running in the thread pool cannot be interrupted: it is abandoned (its result and any
later output are dropped), which is why each route's work must be bounded by itself too (decision 1514)."""

from __future__ import annotations

import asyncio

from runvoy_core.errors import RequestTimeout
from runvoy_core.logging import get_logger
from runvoy_server.middleware.asgi import App, Message, Receive, Scope, Send

log = get_logger("runvoy.server")


def _collect(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("server.abandoned_request_failed", error=type(task.exception()).__name__)


class TimeoutMiddleware:
    def __init__(self, app: App, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = asyncio.Event()
        abandoned = False

        async def guarded_send(message: Message) -> None:
            if abandoned:
                return
            if message["type"] == "http.response.start":
                started.set()
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        waiting = asyncio.ensure_future(started.wait())
        try:
            await asyncio.wait({task, waiting}, timeout=self.seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if task.done() or started.is_set():
            await task
            return
        abandoned = True
        task.cancel()
        task.add_done_callback(_collect)
        raise RequestTimeout(f"the server did not answer within {self.seconds:g}s")
