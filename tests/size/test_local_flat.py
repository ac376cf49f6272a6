"""`status`, `list` (first page, each filter), `locks list`, `cost report` and budget checks read the local store
through indexes, and the work SQLite does for them does not grow with the number of stored runs (issue 14
item 2, decision 1402). Structural: query plans and SQLite's instruction counts, never the clock."""

from __future__ import annotations

import contextlib
import importlib.util
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.cost.budgets import Budget, BudgetScope, budget_status, check_budgets
from runvoy_core.cost.report import GROUPINGS, cost_report
from runvoy_core.lock_queue import queue_key, ticket_key
from runvoy_core.models import Execution, ExecutionRequest, Status, utcnow
from runvoy_core.ports.store import ExecutionQuery
from runvoy_core.providers.local.register import LocalLockRegister
from runvoy_core.providers.local.store import LocalStore

SEED = Path(__file__).resolve().parents[2] / "benchmarks" / "seed.py"
SMALL, LARGE = 150, 3000


def load_seed() -> Any:
    spec = importlib.util.spec_from_file_location("runvoy_bench_seed", SEED)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seed(home: Path, runs: int) -> Path:
    load_seed().seed_local(home, runs)
    store = LocalStore(home)
    try:
        # a few active runs and a rare label, the same in both sizes
        for i, status in enumerate((Status.RUNNING, Status.RUNNING, Status.PENDING)):
            store.create(
                Execution(
                    id=f"ac71ve{i:06x}",
                    provider="local",
                    request=ExecutionRequest(command="sleep 60", labels={"rare": "yes"} if i else {}),
                    status=status,
                    created_at=utcnow(),
                )
            )
    finally:
        store.close()
    return home


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "small": _seed(tmp_path_factory.mktemp("small"), SMALL),
        "large": _seed(tmp_path_factory.mktemp("large"), LARGE),
    }


@dataclass
class Trace:
    """The statements a call ran on one connection, and about how many VM instructions (x100) they took."""

    statements: list[str] = field(default_factory=list)
    steps: int = 0

    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]

    def plans(self, conn: sqlite3.Connection) -> list[tuple[str, list[str]]]:
        return [(s, [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + s)]) for s in self.selects()]


@contextlib.contextmanager
def traced(conn: sqlite3.Connection) -> Iterator[Trace]:
    trace = Trace()

    def step() -> int:
        trace.steps += 1
        return 0

    conn.set_progress_handler(step, 100)
    conn.set_trace_callback(trace.statements.append)
    try:
        yield trace
    finally:
        conn.set_progress_handler(None, 0)
        conn.set_trace_callback(None)


def assert_no_scan(conn: sqlite3.Connection, trace: Trace) -> None:
    """Every table is read through an index (a SCAN in index order is bounded by the LIMIT), and no result
    is sorted afterwards (which would need every matching row first)."""
    for sql, plan in trace.plans(conn):
        for line in plan:
            assert "USE TEMP B-TREE" not in line, (sql, plan)
            # the tables read whole are the lists of bucket identities: as long as the variety of
            # providers, users, labels and locks, not the number of runs
            whole = ("SCAN i", "SCAN cost_provider_identities")
            assert not re.fullmatch(r"SCAN \S+", line) or line in whole, (sql, plan)


FLAT = 1.5
"""The work at LARGE runs is at most this times the work at SMALL (plus one progress step of slack)."""


def _newest_id(store: LocalStore) -> str:
    return store.list(ExecutionQuery(statuses=frozenset({Status.SUCCEEDED}), limit=1)).executions[0].id


def _second_page(store: LocalStore, query: ExecutionQuery) -> Any:
    first = store.list(query)
    assert first.cursor is not None
    return query.model_copy(update={"cursor": first.cursor})


STORE_CALLS: dict[str, Callable[[LocalStore], Callable[[], Any]]] = {
    "get": lambda s: lambda i=_newest_id(s): s.get(i),
    "resolve_prefix": lambda s: lambda i=_newest_id(s): s.resolve_prefix(i[:6], limit=2),
    "list first page": lambda s: lambda: s.list(ExecutionQuery(limit=50)),
    "list second page": lambda s: lambda q=_second_page(s, ExecutionQuery(limit=50)): s.list(q),
    "list --status running": lambda s: (
        lambda: s.list(ExecutionQuery(statuses=frozenset({Status.RUNNING}), limit=50))
    ),
    "list --status running,pending": lambda s: (
        lambda: s.list(ExecutionQuery(statuses=frozenset({Status.RUNNING, Status.PENDING}), limit=50))
    ),
    "list --status succeeded": lambda s: (
        lambda: s.list(ExecutionQuery(statuses=frozenset({Status.SUCCEEDED}), limit=50))
    ),
    "list --label team=ml": lambda s: lambda: s.list(ExecutionQuery(labels={"team": "ml"}, limit=50)),
    "list --label rare=yes": lambda s: lambda: s.list(ExecutionQuery(labels={"rare": "yes"}, limit=50)),
    "list --label rare=yes --status running": lambda s: (
        lambda: s.list(ExecutionQuery(labels={"rare": "yes"}, statuses=frozenset({Status.RUNNING}), limit=50))
    ),
    "list --since 50d": lambda s: (
        lambda: s.list(ExecutionQuery(since=utcnow() - timedelta(days=50), limit=50))
    ),
    "events": lambda s: lambda i=_newest_id(s): s.events(i),
}


def _measure(home: Path, name: str) -> tuple[Trace, Any]:
    store = LocalStore(home)
    try:
        call = STORE_CALLS[name](store)
        conn = store._state.get()
        with traced(conn) as trace:
            result = call()
        assert_no_scan(conn, trace)
        return trace, result
    finally:
        store.close()


@pytest.mark.parametrize("name", list(STORE_CALLS))
def test_store_reads_use_indexes_and_do_not_grow(homes: dict[str, Path], name: str) -> None:
    small, small_result = _measure(homes["small"], name)
    large, _ = _measure(homes["large"], name)
    if isinstance(small_result, list) or hasattr(small_result, "executions"):
        count = len(small_result) if isinstance(small_result, list) else len(small_result.executions)
        assert count > 0, f"{name}: nothing to read in the small store"
    assert large.steps <= FLAT * small.steps + 1, (name, SMALL, small.steps, LARGE, large.steps)


def test_lock_listing_reads_only_the_locks(homes: dict[str, Path]) -> None:
    steps = {}
    for size, home in homes.items():
        register = LocalLockRegister(home)
        try:
            conn = register._state.get()
            with traced(conn) as trace:
                assert len(register.list()) >= 2
            assert_no_scan(conn, trace)
            assert all("executions" not in s for s in trace.statements)
            steps[size] = trace.steps
        finally:
            register.close()
    assert steps["large"] <= FLAT * steps["small"] + 1


def _executions_reads(trace: Trace) -> list[str]:
    return [s for s in trace.selects() if "FROM executions" in s or "JOIN executions" in s]


def _report_work(home: Path, by: str) -> tuple[int, int]:
    """SQLite's work for a 30-day report, and the number of bucket identities the store knows."""
    store = LocalStore(home)
    try:
        store.cost_totals(utcnow())  # the first read of a store checks for an upgrade: not what is measured
        conn = store._state.get()
        with traced(conn) as trace:
            cost_report([store], utcnow() - timedelta(days=30), by)
        return trace.steps, conn.execute("SELECT count(*) FROM cost_identities").fetchone()[0]
    finally:
        store.close()


@pytest.mark.parametrize("by", [b for b in GROUPINGS if b != "day"])
def test_cost_report_work_follows_the_identities_not_the_runs(homes: dict[str, Path], by: str) -> None:
    """One running total per bucket identity (a provider, user, labels, lock combination): the work per
    identity is the same with 20 times the runs, and the identities are bounded by the variety of labels
    and locks (54 in the seed), not by the runs."""
    small, small_ids = _report_work(homes["small"], by)
    large, large_ids = _report_work(homes["large"], by)
    assert large_ids <= 54
    assert large / large_ids <= FLAT * small / small_ids, (by, small, small_ids, large, large_ids)


@pytest.mark.parametrize("by", GROUPINGS)
def test_cost_report_reads_rollups_and_only_the_active_runs(homes: dict[str, Path], by: str) -> None:
    store = LocalStore(homes["large"])
    try:
        conn = store._state.get()
        since = utcnow() - timedelta(days=30, minutes=7)
        with traced(conn) as trace:
            report = cost_report([store], since, by)
        assert_no_scan(conn, trace)
        # the runs themselves are read only through the status index, for the ones still active
        for sql in _executions_reads(trace):
            assert "executions_by_status" in sql and "'SUCCEEDED'" not in sql, sql
        assert report.since == since.replace(minute=0, second=0, microsecond=0) and report.hourly
        assert LARGE // 3 < report.runs < LARGE  # about half of the runs of the 60 seeded days
    finally:
        store.close()


def test_budget_checks_read_no_runs(homes: dict[str, Path], tmp_path: Path) -> None:
    store = LocalStore(homes["large"])
    try:
        conn = store._state.get()
        budget = Budget(name="data", amount=Decimal(1000), scope=BudgetScope(labels={"team": "data"}))
        with traced(conn) as trace:
            status = budget_status(budget, store)
        assert status.spent > 0
        assert _executions_reads(trace) == [], trace.selects()
        from runvoy_core.cost.budgets import BudgetStore

        BudgetStore(tmp_path).put(budget)
        with traced(conn) as trace:
            check_budgets(
                ExecutionRequest(command="true", labels={"team": "data"}, timeout=60),
                provider="local",
                region=None,
                user="alice",
                home=tmp_path,
                hooks=None,
                notify_url=None,
                store=store,
            )
        assert trace.selects() and _executions_reads(trace) == [], trace.selects()
    finally:
        store.close()


def test_lock_listing_skips_the_queue_tickets(tmp_path: Path) -> None:
    """`runvoy locks list` (LockListing.list_locks): the work follows the locks, not the runs that ever
    queued for them, and every lock and slot is there."""
    register = LocalLockRegister(tmp_path / "home")
    try:
        for name in ("a", "a#1", "a.b", "ab", "b", "team/x"):
            register.create_if_absent(name, {"name": name})
        steps = []
        for tickets in (10, 1000):
            for lock in ("a", "b"):
                register.create_if_absent(queue_key(lock), {"next": tickets})
                for n in range(tickets):
                    register.create_if_absent(ticket_key(lock, n), {"n": n})
            conn = register._state.get()
            with traced(conn) as trace:
                listed = register.list_locks()
            assert_no_scan(conn, trace)
            assert [name for name, _ in listed] == ["a", "a#1", "a.b", "ab", "b", "team/x"]
            steps.append(trace.steps)
        assert steps[1] <= FLAT * steps[0] + 1, steps  # 100 times the tickets: the same walk
        assert len(register.list()) == 6 + 2 * 1001  # the register itself keeps every entry
    finally:
        register.close()
