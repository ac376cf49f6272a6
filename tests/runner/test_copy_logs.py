"""Runvoy.copy_logs: an execution's whole output into a sink, in the fastest form both sides offer (file
ranges, raw chunks, or pages of events), optionally following the run to its end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from runvoy_core.api import Runvoy
from runvoy_core.models import LogEvent
from runvoy_core.ports.logs import FileRange
from runvoy_core.testing.waiting import DEADLINE, gate, wait_for

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


def _release_once(seen: Callable[[], bool], release: Path, arrived: list[bool]) -> threading.Thread:
    """Open the command's gate once the sink has the first line (or, failing that, after the deadline, so
    a broken follow fails the test instead of hanging it)."""

    def watch() -> None:
        try:
            wait_for(seen, what="the first line to reach the sink while the run still runs")
            arrived.append(True)
        finally:
            release.touch()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_following_copies_until_the_run_ends(tmp_path: Path) -> None:
    rv = Runvoy()
    release = tmp_path / "release"
    # the run cannot go on until the first line was copied: it can only have been copied while it ran
    execution = rv.submit(f"echo first; {gate(release)}; echo second; echo bye >&2")
    sink = RangeSink()
    arrived: list[bool] = []
    watcher = _release_once(lambda: b"first" in sink.raw.get("stdout", b""), release, arrived)
    rv.copy_logs(execution.id, sink, follow=True)
    watcher.join(DEADLINE)
    assert arrived == [True], "the first line came only at the end"
    assert sink.raw == {"stdout": b"first\nsecond\n", "stderr": b"bye\n"}
    assert rv.status(execution.id).status.is_terminal


def test_an_event_only_sink_gets_each_page_as_it_is_read(tmp_path: Path) -> None:
    rv = Runvoy()
    release = tmp_path / "release"
    execution = rv.submit(f"echo a; {gate(release)}; echo b")
    sink = EventSink()
    arrived: list[bool] = []
    watcher = _release_once(lambda: bool(sink.pages), release, arrived)
    rv.copy_logs(execution.id, sink, follow=True)
    watcher.join(DEADLINE)
    assert sink.by_stream() == {"stdout": ["a", "b"]}
    assert arrived == [True] and len(sink.pages) == 2, "the first line was held back"
