"""Runvoy.copy_logs: an execution's whole output into a sink, in the fastest form both sides offer (file
ranges, raw chunks, or pages of events), optionally following the run to its end."""

from __future__ import annotations

import threading
import time

from runvoy_core.api import Runvoy
from runvoy_core.models import LogEvent
from runvoy_core.ports.logs import FileRange

SCRIPT = "for i in $(seq 1 2000); do echo out$i; done; echo err1 >&2; echo last"


class EventSink:
    def __init__(self) -> None:
        self.pages: list[list[LogEvent]] = []

    def write_events(self, events: list[LogEvent]) -> None:
        self.pages.append(list(events))

    def by_stream(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for page in self.pages:
            for event in page:
                out.setdefault(event.stream, []).append(event.message)
        return out


class RawSink(EventSink):
    def __init__(self) -> None:
        super().__init__()
        self.raw: dict[str, bytes] = {}

    def write_raw(self, stream: str, data: bytes) -> None:
        self.raw[stream] = self.raw.get(stream, b"") + data


class RangeSink(RawSink):
    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[FileRange] = []

    def write_range(self, chunk: FileRange) -> None:
        self.ranges.append(chunk)
        self.write_raw(chunk.stream, chunk.read())


EXPECTED = {
    "stdout": "".join(f"out{i}\n" for i in range(1, 2001)) + "last\n",
    "stderr": "err1\n",
}


def test_ranges_raw_chunks_and_events_carry_the_same_output() -> None:
    rv = Runvoy()
    execution = rv.run(SCRIPT)
    ranges, raw, events = RangeSink(), RawSink(), EventSink()
    for sink in (ranges, raw, events):
        rv.copy_logs(execution.id, sink)
    assert ranges.ranges and not ranges.pages, "file ranges are preferred when the sink takes them"
    assert {k: v.decode() for k, v in ranges.raw.items()} == EXPECTED
    assert not raw.pages and {k: v.decode() for k, v in raw.raw.items()} == EXPECTED
    assert {k: "".join(m + "\n" for m in v) for k, v in events.by_stream().items()} == EXPECTED


def test_following_copies_until_the_run_ends() -> None:
    rv = Runvoy()
    execution = rv.submit("echo first; sleep 1; echo second; echo bye >&2")
    sink = RangeSink()
    seen_first_at: list[float] = []

    def watch_first() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"first" not in sink.raw.get("stdout", b""):
            time.sleep(0.02)
        seen_first_at.append(time.monotonic())

    watcher = threading.Thread(target=watch_first)
    watcher.start()
    started = time.monotonic()
    rv.copy_logs(execution.id, sink, follow=True)
    ended = time.monotonic()
    watcher.join()
    assert sink.raw == {"stdout": b"first\nsecond\n", "stderr": b"bye\n"}
    assert seen_first_at[0] - started < ended - started - 0.5, "the first line came only at the end"
    assert rv.status(execution.id).status.is_terminal


def test_an_event_only_sink_gets_each_page_as_it_is_read() -> None:
    rv = Runvoy()
    execution = rv.submit("echo a; sleep 1; echo b")
    sink = EventSink()
    arrivals: list[float] = []
    write = sink.write_events

    def timed_write(events: list[LogEvent]) -> None:
        arrivals.append(time.monotonic())
        write(events)

    sink.write_events = timed_write  # type: ignore[method-assign]
    rv.copy_logs(execution.id, sink, follow=True)
    ended = time.monotonic()
    assert sink.by_stream() == {"stdout": ["a", "b"]}
    assert len(sink.pages) == 2 and ended - arrivals[0] > 0.5, "the first line was held back"
