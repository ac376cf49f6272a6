"""The event streams of the API (decision 1516): an attached run and followed logs as Server-Sent Events.

The work runs in a thread of its own, in a copy of the request's context (its caller, its request id), and
hands events to the response through a bounded queue the response awaits on the event loop; it sends a keep-alive comment when nothing came for
KEEPALIVE_EVERY seconds. A client that goes away ends the response, not the run: the server keeps watching
the run it started to its end (renewing its lock, enforcing its timeout, recording its outcome), as a
`runvoy run` whose terminal closed would not — a server is the one watcher that is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi.responses import StreamingResponse

from runvoy_core.errors import RunvoyError
from runvoy_core.logging import current_request_id, get_logger
from runvoy_core.remote import sse
from runvoy_server.errors import body_of, internal_body

if TYPE_CHECKING:
    from runvoy_core.models import LockRecord, LogEvent

log = get_logger("runvoy.server")

KEEPALIVE_EVERY = 15.0
QUEUE_LIMIT = 10_000
"""Events held for a slow client before the producer waits for it (bounded memory per stream)."""
_DONE = object()


class EventChannel:
    """A bounded queue of encoded events from the worker thread to the response, which awaits them on the event
    loop: a stream holds no thread of the server's pool (40 threads, shared by every plain request) however
    long its run lasts."""

    def __init__(self) -> None:
        self._items: deque[bytes | object] = deque()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(QUEUE_LIMIT)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.closed = threading.Event()
        """Set when the response ended (the client went away): the worker stops producing."""

    def send(self, name: str, data: str) -> None:
        self._put(sse.encode(name, data))

    def _put(self, item: bytes | object) -> None:
        while not self._slots.acquire(timeout=1.0):
            if self.closed.is_set():
                return
        if self.closed.is_set():
            return
        with self._lock:
            self._items.append(item)
            loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody reads any more
                loop.call_soon_threadsafe(wake.set)

    def finish(self) -> None:
        self._put(_DONE)

    def error(self, exc: BaseException) -> None:
        request_id = current_request_id()
        if isinstance(exc, RunvoyError):
            body = body_of(exc, request_id)
        else:
            log.error("server.stream_failed", error=type(exc).__name__, exc_info=exc)
            body = internal_body(request_id)
        self.send(sse.ERROR, json.dumps(body, ensure_ascii=False))

    async def read(self) -> AsyncIterator[bytes]:
        wake = asyncio.Event()
        with self._lock:
            self._loop, self._wake = asyncio.get_running_loop(), wake
        try:
            while True:
                wake.clear()  # before looking: a send after the look sets it again
                with self._lock:
                    items = list(self._items)
                    self._items.clear()
                if not items:
                    try:
                        await asyncio.wait_for(wake.wait(), KEEPALIVE_EVERY)
                    except TimeoutError:
                        yield sse.KEEPALIVE
                    continue
                for item in items:
                    self._slots.release()
                    if item is _DONE:
                        return
                    assert isinstance(item, bytes)
                    yield item
        finally:
            self.closed.set()


class EventStreamResponse(StreamingResponse):
    media_type = sse.MEDIA_TYPE


def event_stream(work: Callable[[EventChannel], None]) -> EventStreamResponse:
    """A response streaming the events ``work`` sends; ``work`` starts now, in the request's context, and
    an exception it raises becomes the stream's last event, ``error``."""
    channel = EventChannel()
    context = contextvars.copy_context()

    def produce() -> None:
        try:
            work(channel)
        except ClientGone as gone:
            log.info("server.stream_client_gone", lock=str(gone))
        except BaseException as exc:  # the error event is the stream's way to say it
            channel.error(exc)
        finally:
            channel.finish()

    threading.Thread(target=context.run, args=(produce,), name="runvoy-stream", daemon=True).start()
    return EventStreamResponse(
        channel.read(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class ChannelSink:
    """The LogSink of a streamed run: each event as a ``log`` event."""

    def __init__(self, channel: EventChannel) -> None:
        self.channel = channel

    def write_events(self, events: list[LogEvent]) -> None:
        for event in events:
            self.channel.send(sse.LOG, event.model_dump_json())


class ClientGone(Exception):
    """The client of a stream went away while its run was still waiting for its lock: the wait ends there,
    as a local Ctrl-C ends it, rather than start a run nobody asked for any more."""


def lock_wait_sender(channel: EventChannel) -> Callable[[LockRecord, float], None]:
    def send(record: LockRecord, waited: float) -> None:
        if channel.closed.is_set():
            raise ClientGone(record.name)
        channel.send(
            sse.LOCK_WAIT, f'{{"lock":{record.model_dump_json()},"waited":{json.dumps(float(waited))}}}'
        )

    return send


def message_sender(channel: EventChannel) -> Callable[[str], None]:
    def send(text: str) -> None:
        channel.send(sse.MESSAGE, text)

    return send


def stream_schema(
    description: str, events: tuple[str, ...] = sse.EVENT_NAMES
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of an event-stream answer: the schema of each event (OpenAPI 3.1 has no
    separate item schema; the fuzzer reads it so), whose ``data`` is the JSON (or text) the event names."""
    event = {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": list(events)},
            "data": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
        "required": ["event", "data"],
    }
    return {200: {"description": description, "content": {sse.MEDIA_TYPE: {"schema": event}}}}
