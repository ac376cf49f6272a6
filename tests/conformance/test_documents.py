"""The document store suite on the in-process reference store, and the local store's documents in state.db:
shared by processes (server replicas on one RUNVOY_HOME) and kept across the upgrade from schema 2."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from runvoy_core.errors import VersionConflict
from runvoy_core.providers.local import db
from runvoy_core.providers.local.store import LocalStore
from runvoy_core.testing.conformance import DocumentsConformance
from runvoy_core.testing.memory_documents import MemoryDocumentStore
from runvoy_core.testing.waiting import DEADLINE


class TestMemoryDocuments(DocumentsConformance):
    @pytest.fixture
    def documents(self) -> MemoryDocumentStore:
        return MemoryDocumentStore()


# one replica: waits for the go file, then increments the counter through get + put(version), retrying on
# a conflict; prints how many conflicts it met
_REPLICA = """
import os, sys, time
from pathlib import Path
from runvoy_core.errors import VersionConflict
from runvoy_core.providers.local.store import LocalStore

home, go, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
store = LocalStore(home)
store.get_document("team", "counter")  # connected: the schema is in place
print("ready", flush=True)
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go file")
    time.sleep(0.01)
conflicts = 0
for _ in range(count):
    while True:
        current = store.get_document("team", "counter")
        try:
            store.put_document(
                "team", "counter", {"n": current.value["n"] + 1, "by": os.getpid()}, version=current.version
            )
            break
        except VersionConflict:
            conflicts += 1
store.close()
print("conflicts", conflicts, flush=True)
"""


def test_two_processes_incrementing_one_counter_lose_no_update(runvoy_home: Path, tmp_path: Path) -> None:
    store = LocalStore(runvoy_home)
    try:
        store.put_document("team", "counter", {"n": 0})
        go = tmp_path / "go"
        per_process = 150
        replicas = [
            subprocess.Popen(
                [sys.executable, "-c", _REPLICA, str(runvoy_home), str(go), str(per_process)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            for replica in replicas:
                assert replica.stdout is not None
                assert replica.stdout.readline() == "ready\n"
            go.touch()  # both are connected: they start together
            outputs = [replica.communicate(timeout=DEADLINE * 4)[0] for replica in replicas]
        finally:
            for replica in replicas:
                if replica.poll() is None:
                    replica.kill()
                    replica.wait()
        assert [replica.returncode for replica in replicas] == [0, 0], outputs
        assert all(out.startswith("conflicts ") for out in outputs), outputs
        got = store.get_document("team", "counter")
        assert got is not None and got.value["n"] == 2 * per_process
    finally:
        store.close()


def _schema_2_home(home: Path) -> None:
    """A state.db as schema 2 left it: today's tables but the documents table, one ended run, and the
    rollups backfill already done (its meta row removed)."""
    home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(home / db.STATE_DB)
    for statement in db.STATE_SCHEMA:
        if "TABLE IF NOT EXISTS documents" not in statement:
            conn.execute(statement)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '2')")
    conn.execute(
        "INSERT INTO executions (id, created_at, status, version, data) VALUES (?, ?, ?, ?, ?)",
        ("0ld000000001", "2026-01-01T00:00:00.000000Z", "succeeded", 2, "{}"),
    )
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()


def test_a_schema_2_state_db_gains_documents_and_keeps_its_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _schema_2_home(home)
    store = LocalStore(home)
    try:
        assert store.get_document("users", "alice") is None
        created = store.put_document("users", "alice", {"role": "admin"})
        conn = store._state.get()
        assert conn.execute("PRAGMA user_version").fetchone() == (db.SCHEMA_VERSION,)
        assert db.SCHEMA_VERSION == 3
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
        assert conn.execute("SELECT id FROM executions").fetchall() == [("0ld000000001",)]
        # the upgrade from schema 1 does not run again: the backfill it notes was done long ago (a note
        # now would have every process re-read every run's record)
        assert conn.execute("SELECT 1 FROM meta WHERE key = 'rollups_backfill'").fetchone() is None
    finally:
        store.close()
    reopened = LocalStore(home)
    try:
        got = reopened.get_document("users", "alice")
        assert got is not None and (got.value, got.version) == ({"role": "admin"}, created.version)
        # the version counter goes on from where it was: no version comes back after the reopen
        with pytest.raises(VersionConflict):
            reopened.put_document("users", "alice", {"role": "viewer"}, version=str(int(created.version) + 1))
        assert reopened.put_document(
            "users", "alice", {"role": "viewer"}, version=created.version
        ).version not in (created.version,)
    finally:
        reopened.close()
