"""Snapshots of everything runvoy can change, for tests that prove an operation changed nothing
(``reconcile --dry-run``, ``setup --dry-run``): take one before, one after, compare them with ``==``.

``store_snapshot`` covers any provider's store and lock register through the ports; ``local_snapshot`` adds
the local provider's task table and the files under its home. Each cloud provider's tests add a snapshot of
the cloud itself (its tasks, tables and objects) read through its own API.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from runvoy_core.ports.locks import LockRegister
from runvoy_core.ports.store import ExecutionQuery, StorePort

# SQLite's journal files change when a reader opens the database, not when anything is written
_VOLATILE_SUFFIXES = ("-wal", "-shm", "-journal")


def store_snapshot(store: StorePort, register: LockRegister | None = None) -> dict[str, Any]:
    """Every record (as stored, version included), its event history, and every lock register entry."""
    records: dict[str, Any] = {}
    cursor = None
    while True:
        page = store.list(ExecutionQuery(limit=200, cursor=cursor))
        for record in page.executions:
            records[record.id] = {
                "record": record.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in store.events(record.id)],
            }
        cursor = page.cursor
        if not cursor:
            break
    locks = {}
    if register is not None:
        locks = {name: (v.version, v.value) for name, v in register.list()}
    return {"records": records, "locks": locks}


def local_snapshot(home: Path) -> dict[str, Any]:
    """Every row of every table in the home's SQLite databases, and every other file's content hash."""
    home = Path(home)
    tables: dict[str, Any] = {}
    files: dict[str, str] = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        name = str(path.relative_to(home))
        if name.endswith(_VOLATILE_SUFFIXES):
            continue
        if path.suffix == ".db":
            tables[name] = _dump_db(path)
        else:
            files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"databases": tables, "files": files}


def wait_local_settled(home: Path) -> None:
    """Wait until the supervisor of every ended local task has exited: it still tidies up (a WAL checkpoint,
    leftover processes) after it records the outcome, and a snapshot must not race with that."""
    from runvoy_core.providers.local import procinfo
    from runvoy_core.testing.waiting import wait_for

    def settled() -> bool:
        conn = sqlite3.connect(f"file:{Path(home) / 'state.db'}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT sup_pid, sup_start FROM tasks WHERE finished_at IS NOT NULL"
            ).fetchall()
        finally:
            conn.close()
        return not any(procinfo.is_alive(pid, start) for pid, start in rows)

    wait_for(settled, what="the supervisors of ended tasks to exit")


def _dump_db(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in names}
    finally:
        conn.close()
