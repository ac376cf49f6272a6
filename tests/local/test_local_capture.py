"""How the local provider turns a command's pipes into stored lines: lines split across writes, a last line
without a newline, lines longer than the read buffer, stream order, and the raw and range readers that the
attached CLI streams from."""

from __future__ import annotations

from pathlib import Path

from runvoy_core.ports.compute import TaskSpec
from runvoy_core.providers.local.logs import LocalLogs
from runvoy_core.providers.local.process import READ_SIZE
from runvoy_core.providers.local.provider import LocalProvider
from runvoy_core.testing.waiting import DEADLINE, gate, wait_for


def run(home: Path, script: str, key: str) -> tuple[LocalProvider, str]:
    provider = LocalProvider(home)
    ref = provider.compute.start(TaskSpec(execution_id=key, argv=["/bin/sh", "-c", script]), key)
    state = provider.compute.wait(ref, DEADLINE)
    assert state.ended, state
    return provider, ref


def events(provider: LocalProvider, ref: str) -> list[tuple[str, str]]:
    page = provider.logs.read(ref, None, 100_000)
    return [(e.stream, e.message) for e in page.events]


def test_a_line_written_in_pieces_is_one_line(runvoy_home: Path) -> None:
    provider, ref = run(
        runvoy_home, "printf 'abc'; sleep 0.3; printf 'def\\nghi'; sleep 0.3; echo jkl", "pieces"
    )
    assert events(provider, ref) == [("stdout", "abcdef"), ("stdout", "ghijkl")]
    provider.close()


def test_the_last_line_without_a_newline_is_kept(runvoy_home: Path) -> None:
    provider, ref = run(runvoy_home, "echo one; printf 'two'; printf 'err' >&2", "tail")
    assert sorted(events(provider, ref)) == [("stderr", "err"), ("stdout", "one"), ("stdout", "two")]
    provider.close()


def test_lines_longer_than_the_read_buffer_lose_no_byte(runvoy_home: Path) -> None:
    size = 3 * READ_SIZE + 123
    provider, ref = run(runvoy_home, f"head -c {size} /dev/zero | tr '\\0' x; echo; echo after", "long")
    messages = [m for _, m in events(provider, ref)]
    assert messages[-1] == "after"
    # a line longer than the buffer is stored in buffer-sized pieces, every byte of it
    assert "".join(messages[:-1]) == "x" * size
    assert all(len(m) <= READ_SIZE for m in messages)
    provider.close()


def test_slow_lines_keep_their_order_across_streams(runvoy_home: Path, tmp_path: Path) -> None:
    expected = [
        (stream, f"{name}{i}") for i in range(4) for stream, name in (("stdout", "out"), ("stderr", "err"))
    ]
    # each line is written only once the one before was captured: the order to keep is certain (a pause
    # would not be on a loaded machine, where the supervisor may read both pipes in one go)
    steps = [
        f"{gate(tmp_path / f'go{n}')}; echo {message}{' >&2' if stream == 'stderr' else ''}"
        for n, (stream, message) in enumerate(expected)
    ]
    provider = LocalProvider(runvoy_home)
    ref = provider.compute.start(
        TaskSpec(execution_id="order", argv=["/bin/sh", "-c", "; ".join(steps)]), "order"
    )
    for n in range(len(expected)):
        (tmp_path / f"go{n}").touch()
        wait_for(lambda n=n: len(events(provider, ref)) > n, what=f"line {n + 1} to be captured")  # type: ignore[misc]
    assert provider.compute.wait(ref, DEADLINE).ended
    assert events(provider, ref) == expected
    provider.close()


def test_ranges_and_raw_chunks_hold_the_same_bytes_from_any_cursor(runvoy_home: Path) -> None:
    script = "for i in $(seq 1 300); do echo line$i; if [ $((i % 50)) = 0 ]; then echo e$i >&2; sleep 0.02; fi; done"
    provider, ref = run(runvoy_home, script, "ranges")
    logs = provider.logs
    assert isinstance(logs, LocalLogs)
    everything = [(s, d) for s, d in logs.read_raw_chunks(ref)[0]]
    ranges, end = logs.read_raw_ranges(ref)
    assert [(r.stream, r.read()) for r in ranges] == everything
    assert end == logs.read_raw_chunks(ref)[1]
    lines = [m for _, m in events(provider, ref)]
    # resume in the middle of a chunk, where a paged `read` stopped
    for limit in (1, 7, 49, 51, 123):
        cursor = logs.read(ref, None, limit).cursor
        chunks, after_chunks = logs.read_raw_chunks(ref, cursor)
        ranges, after_ranges = logs.read_raw_ranges(ref, cursor)
        assert [(r.stream, r.read()) for r in ranges] == chunks, limit
        assert after_ranges == after_chunks
        assert chunks[0][1].split(b"\n")[0].decode() == lines[limit]
    # a small budget returns fewer ranges, and the cursor continues where they stop
    first, cursor = logs.read_raw_ranges(ref, None, max_bytes=1)
    rest, _ = logs.read_raw_ranges(ref, cursor)
    assert [(r.stream, r.read()) for r in first + rest] == everything
    provider.close()
