"""``runvoy cost report``: spending (and local runs' cloud equivalents) of stored executions, grouped.

A store that keeps cost rollups (``CostRollups``) is read from its hour buckets plus its few active runs,
so a report costs the same however many runs are stored; the period then starts at the start of the hour
of ``--since`` (decision 1403). A store without rollups is read the old way, every run since ``--since``.
A run counts in the hour (and day) it ended; a run still active counts in the hour it was created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runvoy_core.cost.rollups import RollupRow, floor_hour
from runvoy_core.models import ACTIVE_STATUSES, Execution
from runvoy_core.ports.optional import CostRollups, CostTotals

if TYPE_CHECKING:
    from runvoy_core.ports.store import StorePort

GROUPINGS = ("provider", "user", "label", "lock", "day")


@dataclass
class ReportRow:
    key: str
    runs: int = 0
    billed_seconds: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    equivalents: dict[str, Decimal] = field(default_factory=dict)
    currency: str = "USD"

    def add(self, execution: Execution) -> None:
        self.runs += 1
        cost = execution.cost
        if cost is None:
            return
        self.billed_seconds += cost.billed_seconds
        self.total += cost.total
        for provider, amount in cost.equivalents.items():
            self.equivalents[provider] = self.equivalents.get(provider, Decimal(0)) + amount

    def add_rollup(self, row: RollupRow) -> None:
        self.runs += row.runs
        self.billed_seconds += row.billed_seconds
        self.total += row.total
        for provider, amount in row.equivalents.items():
            self.equivalents[provider] = self.equivalents.get(provider, Decimal(0)) + amount

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "runs": self.runs,
            "billed_seconds": str(self.billed_seconds),
            "total": str(self.total),
            "currency": self.currency,
            "equivalents": {k: str(v) for k, v in sorted(self.equivalents.items())},
        }


def _keys(execution: Execution, by: str) -> list[str]:
    if by == "provider":
        return [execution.provider]
    if by == "user":
        return [execution.user or "-"]
    if by == "lock":
        return [execution.request.lock or execution.lock or "-"]  # a lock's slots count as the lock
    if by == "day":
        # the day it ended, as in the rollups (whose hour is the hour it ended)
        return [floor_hour(execution.finished_at or execution.created_at).date().isoformat()]
    labels = execution.request.labels
    # a run with two labels counts under both; one without labels under "-"
    return [f"{k}={v}" for k, v in sorted(labels.items())] or ["-"]


def build_report(executions: Iterable[Execution], by: str) -> list[ReportRow]:
    """Rows sorted by total descending (then key); runs without a cost yet (still running) count as runs."""
    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    rows: dict[str, ReportRow] = {}
    for execution in executions:
        for key in _keys(execution, by):
            row = rows.setdefault(key, ReportRow(key=key))
            if execution.cost is not None:
                row.currency = execution.cost.currency
            row.add(execution)
    return _sorted(rows, by)


def _sorted(rows: dict[str, ReportRow], by: str) -> list[ReportRow]:
    if by == "day":
        return sorted(rows.values(), key=lambda r: r.key)
    return sorted(rows.values(), key=lambda r: (-r.total, r.key))


def _rollup_keys(row: RollupRow, by: str) -> list[str]:
    if by == "provider":
        return [row.provider]
    if by == "user":
        return [row.user or "-"]
    if by == "lock":
        return [row.lock or "-"]
    if by == "day":
        return [row.hour.date().isoformat()]
    return [f"{k}={v}" for k, v in row.labels] or ["-"]


def report_from_rollups(
    rollups: Iterable[RollupRow], by: str, active: Iterable[Execution] = ()
) -> list[ReportRow]:
    """The rows ``build_report`` gives for the ended runs counted in ``rollups`` plus the runs in ``active``
    (read one by one: the active runs of a store with rollups, every run of a store without)."""
    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    rows: dict[str, ReportRow] = {}
    for bucket in rollups:
        for key in _rollup_keys(bucket, by):
            row = rows.setdefault(key, ReportRow(key=key))
            row.currency = bucket.currency
            row.add_rollup(bucket)
    for execution in active:
        for key in _keys(execution, by):
            rows.setdefault(key, ReportRow(key=key)).add(execution)
    return _sorted(rows, by)


@dataclass
class CostReport:
    """A whole report: its rows and what they cover."""

    by: str
    requested_since: datetime
    since: datetime
    """Where the period starts: the start of ``requested_since``'s hour when any store was read from rollups."""
    runs: int
    total: Decimal
    rows: list[ReportRow]

    @property
    def hourly(self) -> bool:
        return self.since != self.requested_since

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "since_requested": self.requested_since.isoformat(),
            "since_rounded_to_hour": self.since != self.requested_since,
            "by": self.by,
            "runs": self.runs,
            "total": str(self.total),
            "rows": [r.as_dict() for r in self.rows],
        }


def active_since(store: StorePort, since: datetime) -> list[Execution]:
    """The runs created since ``since`` that have not ended (read through the status index: few)."""
    from runvoy_core.ports.store import ExecutionQuery

    found: list[Execution] = []
    query = ExecutionQuery(statuses=frozenset(ACTIVE_STATUSES), since=since, limit=500)
    while True:
        page = store.list(query)
        found.extend(page.executions)
        if not page.cursor or not page.executions:
            return found
        query = query.model_copy(update={"cursor": page.cursor})


def cost_report(
    stores: Sequence[StorePort], since: datetime, by: str, *, provider: str | None = None
) -> CostReport:
    """The report over ``stores``: rollups (plus active runs) where a store keeps them, else every run
    created since ``since``. A failing store raises; the caller decides whether to go on without it."""
    from runvoy_core.cost.budgets import executions_since

    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    rolled = any(isinstance(store, CostRollups) for store in stores)
    start = floor_hour(since) if rolled else since
    buckets: list[RollupRow] = []
    executions: list[Execution] = []
    seen: set[str] = set()
    for store in stores:
        if isinstance(store, CostRollups):
            read: Callable[[datetime], list[RollupRow]] = store.rollups
            if isinstance(store, CostTotals):
                # running totals: one row per bucket identity, or per provider and day for the days
                read = store.day_totals if by == "day" else store.cost_totals
            buckets.extend(b for b in read(start) if provider is None or b.provider == provider)
            found: Iterable[Execution] = active_since(store, start)
        else:
            found = executions_since(store, start)
        for e in found:
            if e.id not in seen and (provider is None or e.provider == provider):
                seen.add(e.id)
                executions.append(e)
    rows = report_from_rollups(buckets, by, executions)
    runs = sum(b.runs for b in buckets) + len(executions)
    total = sum((b.total for b in buckets), Decimal(0)) + sum(
        (e.cost.total for e in executions if e.cost), Decimal(0)
    )
    return CostReport(by=by, requested_since=since, since=start, runs=runs, total=total, rows=rows)
