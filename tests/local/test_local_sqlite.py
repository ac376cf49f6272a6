"""The local provider's SQLite layer: schema, WAL, log cursors and raw reads, and the lock register's
compare-and-swap under 16 concurrent processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from runvoy_core.errors import UsageError
from runvoy_core.ports.compute import TaskSpec
from runvoy_core.providers.local import db
from runvoy_core.providers.local.logs import LocalLogs
from runvoy_core.providers.local.provider import LocalProvider
from runvoy_core.providers.local.register import LocalLockRegister
from runvoy_core.testing.waiting import DEADLINE, gate, wait_for


def test_schema_version_row_and_wal(runvoy_home: Path) -> None:
    conn = db.connect_state(runvoy_home)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(db.SCHEMA_VERSION),
    )
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (db.SCHEMA_VERSION,)
    logs = db.connect_logs(runvoy_home)
    assert logs.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert (runvoy_home / "state.db").exists() and (runvoy_home / "logs.db").exists()
    db.connect_state(runvoy_home).close()  # opening again keeps everything


def insert_chunks(home: Path, ref: str, chunks: list[tuple[str, bytes]]) -> None:
    conn = db.connect_logs(home)
    path = db.log_path(home, ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    offset = 0
    with db.write(conn), path.open("ab") as out:
        for seq, (stream, data) in enumerate(chunks, start=1):
            out.write(data)
            conn.execute(
                "INSERT INTO log_chunks (execution_id, seq, stream, ts, offset, length) VALUES (?, ?, ?, ?, ?, ?)",
                (ref, seq, stream, 1_700_000_000.0 + seq, offset, len(data)),
            )
            offset += len(data)
    conn.close()


def test_cursor_and_raw_reads_agree(runvoy_home: Path) -> None:
    insert_chunks(
        runvoy_home,
        "t1",
        [("stdout", b"a\nb\nc\n"), ("stderr", b"e1\n"), ("stdout", b"d\n\xff\xfe bad\n")],
    )
    logs = LocalLogs(runvoy_home)
    page = logs.read("t1", None, 2)
    assert [e.message for e in page.events] == ["a", "b"]
    # the raw reader continues from a cursor in the middle of a chunk
    raw, cursor = logs.read_raw_chunks("t1", page.cursor)
    assert raw == [("stdout", b"c\n"), ("stderr", b"e1\n"), ("stdout", b"d\n\xff\xfe bad\n")]
    assert logs.read("t1", cursor).events == []
    rest = logs.read("t1", page.cursor)
    assert [(e.stream, e.message) for e in rest.events] == [
        ("stdout", "c"),
        ("stderr", "e1"),
        ("stdout", "d"),
        ("stdout", "\ufffd\ufffd bad"),
    ]
    assert rest.events[0].timestamp.timestamp() == 1_700_000_001.0
    assert rest.cursor == cursor
    everything, _ = logs.read_raw_chunks("t1")
    assert b"".join(d for _, d in everything) == b"a\nb\nc\ne1\nd\n\xff\xfe bad\n"
    logs.close()


def test_unknown_ref_and_bad_cursor(runvoy_home: Path) -> None:
    logs = LocalLogs(runvoy_home)
    page = logs.read("nothing-here")
    assert page.events == [] and page.cursor == "0:0"
    assert logs.read_raw_chunks("nothing-here") == ([], "0:0")
    for bad in ("x", "1", "1:-2", "a:b"):
        with pytest.raises(UsageError):
            logs.read("t", bad)
    logs.close()


def test_follow_picks_up_new_output_while_running(runvoy_home: Path, tmp_path: Path) -> None:
    provider = LocalProvider(runvoy_home)
    two, three = tmp_path / "two", tmp_path / "three"
    # each line is written only once the reader has the one before: it is read while the task runs
    spec = TaskSpec(
        execution_id="follow1",
        argv=["/bin/sh", "-c", f"echo one; {gate(two)}; echo two; {gate(three)}; echo three"],
    )
    ref = provider.compute.start(spec, "follow1")
    seen: list[str] = []
    cursor = None

    def read_more() -> int:
        nonlocal cursor
        page = provider.logs.read(ref, cursor, 1000)
        seen.extend(e.message for e in page.events)
        cursor = page.cursor
        return len(seen)

    for count, release in ((1, two), (2, three), (3, None)):
        wait_for(lambda count=count: read_more() >= count, what=f"line {count}")  # type: ignore[misc]
        if release is not None:
            assert not provider.compute.describe(ref).ended  # held by its gate: read while it runs
            release.touch()
    assert seen == ["one", "two", "three"]
    assert provider.compute.wait(ref, DEADLINE).ended
    assert provider.logs.read(ref, cursor).events == []
    provider.close()


def test_big_output_is_captured_completely_and_fast(runvoy_home: Path) -> None:
    """20 MB of 100-byte lines: every byte arrives, in order, in few rows, at a sane speed."""
    provider = LocalProvider(runvoy_home)
    lines = 200_000
    spec = TaskSpec(
        execution_id="flood1",
        argv=["/bin/sh", "-c", f"yes {'x' * 99} | head -n {lines}; echo end >&2"],
    )
    begun = time.monotonic()
    ref = provider.compute.start(spec, "flood1")
    state = provider.compute.wait(ref, 120)
    took = time.monotonic() - begun
    assert state.exit_code == 0
    total, cursor, chunks = 0, None, 0
    stderr = b""
    while True:
        raw, cursor = provider.logs.read_raw_chunks(ref, cursor)
        if not raw:
            break
        for stream, data in raw:
            chunks += 1
            if stream == "stderr":
                stderr += data
            else:
                total += len(data)
    assert total == lines * 100 and stderr == b"end\n"
    assert chunks < lines / 50, "output should be stored in chunks of many lines"
    # a sanity bound with room for a loaded machine (a per-line write would take minutes)
    assert took < 60, f"capturing 20 MB took {took:.1f}s"
    count = sqlite3.connect(runvoy_home / "logs.db").execute("SELECT count(*) FROM log_chunks").fetchone()[0]
    assert count == chunks
    provider.close()


# -- the register across processes ------------------------------------------------------------------------
WORKERS = 16
INCREMENTS = 25


def _increment(home: str, start: multiprocessing.synchronize.Event) -> int:  # type: ignore[name-defined]
    register = LocalLockRegister(Path(home))
    start.wait(10)
    conflicts = 0
    for _ in range(INCREMENTS):
        while True:
            current = register.read("counter")
            assert current is not None
            if register.replace_if_version(
                "counter",
                {"n": current.value["n"] + 1, "log": [*current.value["log"], 0][-3:]},
                current.version,
            ):
                break
            conflicts += 1
    register.close()
    return conflicts


def _create(home: str, i: int, start: multiprocessing.synchronize.Event) -> bool:  # type: ignore[name-defined]
    register = LocalLockRegister(Path(home))
    start.wait(10)
    return register.create_if_absent("canary", {"winner": i})


def test_register_cas_under_16_processes(runvoy_home: Path) -> None:
    ctx = multiprocessing.get_context("fork")  # each worker opens its own connections after the fork
    register = LocalLockRegister(runvoy_home)
    register.create_if_absent("counter", {"n": 0, "log": []})
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(WORKERS) as pool:
            creates = [pool.apply_async(_create, (str(runvoy_home), i, start)) for i in range(WORKERS)]
            time.sleep(0.2)
            start.set()
            winners = [r.get(60) for r in creates]
            assert winners.count(True) == 1
            start.clear()
            results = [pool.apply_async(_increment, (str(runvoy_home), start)) for _ in range(WORKERS)]
            time.sleep(0.1)
            start.set()
            for r in results:
                r.get(120)
    final = register.read("counter")
    assert final is not None and final.value["n"] == WORKERS * INCREMENTS
    assert final.version == str(1 + WORKERS * INCREMENTS)
    register.close()


def test_factory_and_setup(runvoy_home: Path) -> None:
    from runvoy_core.config import load_settings
    from runvoy_core.providers.local.provider import create_provider

    provider = create_provider({"shell": "/bin/sh"}, load_settings())
    assert provider.name == "local" and provider.region is None and provider.home == runvoy_home
    assert provider.setup(dry_run=True) == [
        {"resource": "sqlite databases", "action": "would create", "detail": str(runvoy_home)}
    ]
    assert provider.setup()[0]["action"] == "created"
    assert (runvoy_home / "state.db").exists() and (runvoy_home / "logs.db").exists()
    assert provider.setup()[0]["action"] == "exists"
    provider.close()
