"""Server-Sent Events, both sides of the wire: the server writes them with ``encode``, the remote backend reads
them with ``read_events`` (the event-stream format of the HTML standard, the part runvoy uses: ``event:`` and
``data:`` fields, comment lines as keep-alives, a blank line ending an event).

Event names of the runvoy API (decision 1516): ``started`` (the execution), ``log`` (a LogEvent),
``message`` (text), ``lock_wait`` (``{"lock": LockRecord, "waited": seconds}``), ``end`` (the execution),
``error`` (the JSON error body). Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

STARTED = "started"
LOG = "log"
MESSAGE = "message"
LOCK_WAIT = "lock_wait"
END = "end"
ERROR = "error"
EVENT_NAMES = (STARTED, LOG, MESSAGE, LOCK_WAIT, END, ERROR)

KEEPALIVE = b": keep-alive\n\n"
"""A comment line: proxies see traffic on a quiet stream (a run that prints nothing for minutes)."""
MEDIA_TYPE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: str


def encode(name: str, data: str) -> bytes:
    """One event; ``data`` with line breaks becomes several ``data:`` lines, as the format requires."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "".join(f"data: {line}\n" for line in lines)
    return f"event: {name}\n{body}\n".encode()


def read_events(lines: Iterable[bytes]) -> Iterator[Event]:
    """The events of a stream given as its lines (with or without their line ends). An event without a name
    is a ``message`` (the format's default); comments and unknown fields are skipped."""
    name = ""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield Event(name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    # an event cut off by the end of the stream (no blank line yet) is dropped, as the format says: a
    # truncated ``end`` must read as a broken stream, not as the end of the run
