"""Logs: ACI's cursor-less list_logs read exactly once per line, and the Blob archive."""

from __future__ import annotations

from typing import Any

from runvoy_azure import loglines
from runvoy_azure_testfakes.helpers import read_all, spec, wait_ended, wait_for

from runvoy_core.ports import TaskPhase


def test_many_lines_sharing_timestamps_are_read_exactly_once_in_pages(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("bbbb00000001", "seq 1 700"), "bbbb00000001")
    wait_ended(provider, ref)
    stamps = [line.split(" ", 1)[0] for line in fake_aci.group("runvoy-bbbb00000001").log]
    assert len(set(stamps)) < len(stamps)  # chunks of lines share one timestamp
    assert read_all(provider, ref, limit=7) == [str(n) for n in range(1, 701)]
    assert read_all(provider, ref, limit=1000) == [str(n) for n in range(1, 701)]


def test_reading_while_it_runs_misses_and_repeats_nothing(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(
        spec("bbbb00000002", "for i in $(seq 1 60); do echo line $i; echo err $i >&2; sleep 0.005; done"),
        "bbbb00000002",
    )
    seen: list[str] = []
    cursor = None
    while True:
        state = provider.compute.describe(ref)
        page = provider.logs.read(ref, cursor, 5)
        cursor = page.cursor
        seen.extend(e.message for e in page.events)
        if state.ended and not page.events:
            break
    assert sorted(seen) == sorted([f"line {i}" for i in range(1, 61)] + [f"err {i}" for i in range(1, 61)])
    assert len(seen) == 120


def test_pattern_filters_but_the_cursor_moves_on(provider: Any) -> None:
    ref = provider.compute.start(
        spec("bbbb00000003", "echo apple; echo banana; echo apricot"), "bbbb00000003"
    )
    wait_ended(provider, ref)
    page = provider.logs.read(ref, None, 100, "ap")
    assert [e.message for e in page.events] == ["apple", "apricot"]
    assert provider.logs.read(ref, page.cursor, 100).events == []


def test_archive_merges_and_reads_come_from_it_after_deletion(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("bbbb00000004", "echo one; echo two"), "bbbb00000004")
    wait_ended(provider, ref)
    assert provider.logs.archive(ref, "bbbb00000004") == 2
    assert provider.logs.archive(ref, "bbbb00000004") == 2  # nothing new: unchanged
    provider.compute.cleanup(ref)
    assert fake_aci.group("runvoy-bbbb00000004") is None
    assert read_all(provider, ref) == ["one", "two"]
    blob = provider.clients.blobs.get_blob_client(
        provider.config.logs_container, "logs/runvoy-bbbb00000004.log"
    )
    props = blob.get_blob_properties()
    assert props.metadata["execution_id"] == "bbbb00000004"
    assert blob.download_blob().readall().decode().endswith(" two\n")


def test_a_cursor_from_the_live_log_continues_in_the_archive(provider: Any, fake_aci: Any) -> None:
    ref = provider.compute.start(spec("bbbb00000005", "echo a; echo b; sleep 30"), "bbbb00000005")
    wait_for(
        provider,
        ref,
        lambda s: s.phase is TaskPhase.RUNNING and len(fake_aci.group("runvoy-bbbb00000005").log) == 2,
    )
    first = provider.logs.read(ref, None, 1)
    assert [e.message for e in first.events] == ["a"]
    provider.compute.stop(ref, 0)  # snapshot, then stop (which drops the live log)
    wait_ended(provider, ref)
    rest = provider.logs.read(ref, first.cursor, 100)
    assert [e.message for e in rest.events] == ["b"]


def test_cursor_arithmetic() -> None:
    text = (
        "2026-11-27T03:00:00.000000001Z a\n"
        "2026-11-27T03:00:00.000000001Z b\n"
        "2026-11-27T03:00:00.000000002Z c\n"
        "2026-11-27T03:00:00.000000002Z d\n"
    )
    lines = loglines.parse(text)
    assert [line.message for line in lines] == ["a", "b", "c", "d"]
    cursor = loglines.make_cursor(lines, 2)
    assert cursor == "2026-11-27T03:00:00.000000002Z|1"
    assert loglines.resume_index(lines, cursor) == 3
    assert loglines.resume_index(lines, loglines.make_cursor(lines, 1)) == 2
    # the named line fell out of the text (head cut): resume at the first later line
    assert loglines.resume_index(lines[2:], loglines.make_cursor(lines, 1)) == 0
    assert loglines.resume_index(lines, "garbage") == 0
    merged = loglines.merge(lines[:3], lines[1:])
    assert [line.message for line in merged] == ["a", "b", "c", "d"]
    assert loglines.render(merged) == text
    assert lines[0].timestamp.microsecond == 0 and lines[0].key == (lines[0].key[0], 1)
