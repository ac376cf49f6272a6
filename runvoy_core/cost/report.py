"""``runvoy cost report``: spending (and local runs' cloud equivalents) of stored executions, grouped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runvoy_core.models import Execution

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
        return [execution.created_at.date().isoformat()]
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
    if by == "day":
        return sorted(rows.values(), key=lambda r: r.key)
    return sorted(rows.values(), key=lambda r: (-r.total, r.key))
