"""A state.db of schema 1 (before the label index and the cost rollups) is upgraded in place, and the runs it
holds are found by label and counted into the rollups once (decision 1402); `runvoy reconcile` re-counts an
ended run whose count was lost; `cost report` says where its period starts (decision 1403)."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from runvoy_cli.main import cli
from runvoy_core.api import Runvoy
from runvoy_core.config import load_settings
from runvoy_core.cost.report import build_report, report_from_rollups
from runvoy_core.models import Cost, Execution, ExecutionRequest, Status, utcnow
from runvoy_core.ports.store import ExecutionQuery
from runvoy_core.providers.local import db
from runvoy_core.providers.local.store import LocalStore

# the tables of schema 1 that hold records (as released: the upgrade must work from exactly these)
SCHEMA_1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE executions (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL,"
    " version INTEGER NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX executions_newest ON executions (created_at DESC, id DESC)",
    "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, execution_id TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX events_by_execution ON events (execution_id, seq)",
    "CREATE TABLE locks (name TEXT PRIMARY KEY, version INTEGER NOT NULL, value TEXT NOT NULL)",
)


def _run(i: int, status: Status, labels: dict[str, str], total: str) -> Execution:
    at = utcnow() - timedelta(hours=i)
    return Execution(
        id=f"0ld{i:09x}",
        provider="local",
        request=ExecutionRequest(command="true", labels=labels),
        status=status,
        created_at=at,
        finished_at=at if status.is_terminal else None,
        user="alice",
        cost=Cost(provider="local", total=Decimal(total)) if status.is_terminal else None,
        version=2,
    )


def _schema_1_home(home: Path, runs: list[Execution]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(home / db.STATE_DB)
    for statement in SCHEMA_1:
        conn.execute(statement)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    conn.executemany(
        "INSERT INTO executions (id, created_at, status, version, data) VALUES (?, ?, ?, ?, ?)",
        [
            (
                e.id,
                e.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                e.status.value,
                e.version,
                e.model_dump_json(),
            )
            for e in runs
        ],
    )
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()


def test_a_schema_1_store_is_upgraded_and_its_runs_counted_once(tmp_path: Path) -> None:
    runs = [
        _run(1, Status.SUCCEEDED, {"team": "data"}, "1.25"),
        _run(2, Status.FAILED, {"team": "web"}, "0.50"),
        _run(3, Status.RUNNING, {"team": "data"}, "0"),
        _run(30, Status.SUCCEEDED, {}, "2.00"),
    ]
    home = tmp_path / "home"
    _schema_1_home(home, runs)
    store = LocalStore(home)
    try:
        page = store.list(ExecutionQuery(labels={"team": "data"}))
        assert [e.id for e in page.executions] == [runs[0].id, runs[2].id]
        since = utcnow() - timedelta(days=3)
        buckets = store.rollups(since)
        ended = [e for e in runs if e.status.is_terminal]
        for by in ("provider", "label", "day"):
            assert [r.as_dict() for r in report_from_rollups(buckets, by)] == [
                r.as_dict() for r in build_report(ended, by)
            ]
        # counted once: the backfill is not repeated, and a run's own count finds it done
        assert store.add_to_rollups(runs[0]) is False
        for read in (store.rollups, store.cost_totals, store.day_totals):
            assert sum(b.runs for b in read(since)) == 3
        conn = store._state.get()
        assert conn.execute("PRAGMA user_version").fetchone() == (db.SCHEMA_VERSION,)
        assert conn.execute("SELECT 1 FROM meta WHERE key = 'rollups_backfill'").fetchone() is None
    finally:
        store.close()


def test_reconcile_counts_an_ended_run_whose_count_was_lost(runvoy_home: Path) -> None:
    store = LocalStore(runvoy_home)
    ended = _run(1, Status.SUCCEEDED, {"team": "data"}, "3.00")
    try:
        store.create(ended)
        conn = store._state.get()
        # as if the process that wrote the final record had died before counting it
        with db.write(conn):
            tables = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'cost_%'"
            )
            for (table,) in tables.fetchall():
                conn.execute(f"DELETE FROM {table}")
        assert store.rollups(utcnow() - timedelta(days=1)) == []
    finally:
        store.close()
    with Runvoy(provider="local", settings=load_settings()) as rv:
        actions = rv.reconcile()
        assert {"execution": ended.id, "action": "counted into cost rollups"} in actions
        again = rv.reconcile()
        assert not [a for a in again if a.get("action") == "counted into cost rollups"]
    store = LocalStore(runvoy_home)
    try:
        since = utcnow() - timedelta(days=1)
        for read in (store.rollups, store.cost_totals, store.day_totals):
            (bucket,) = read(since)
            assert bucket.runs == 1 and bucket.total == Decimal("3.00")
    finally:
        store.close()


def test_cost_report_says_a_mid_hour_since_counts_from_the_start_of_its_hour(runvoy_home: Path) -> None:
    store = LocalStore(runvoy_home)
    try:
        store.create(_run(0, Status.SUCCEEDED, {}, "1.00"))
    finally:
        store.close()
    result = CliRunner().invoke(cli, ["cost", "report", "--since", "90m", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    requested = utcnow().fromisoformat(data["since_requested"])
    since = utcnow().fromisoformat(data["since"])
    assert since == requested.replace(minute=0, second=0, microsecond=0)
    assert data["since_rounded_to_hour"] is (since != requested)
    assert data["runs"] == 1 and Decimal(data["total"]) == Decimal("1.00")
    result = CliRunner().invoke(cli, ["cost", "report", "--since", "90m"])
    assert result.exit_code == 0
    assert f"total since {since:%Y-%m-%d %H:%M} UTC" in result.stderr
    if since != requested:
        assert "(the start of the hour of --since)" in result.stderr
