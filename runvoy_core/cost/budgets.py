"""Spending budgets: definitions, what has been spent in the current period, and the check made before a run.

Budgets live in SQLite at ``<home>/budgets.sqlite`` (table ``budgets``: one JSON document per name), next to
the thresholds that already alerted in a period (table ``budget_alerts``, whose primary key makes "alert once
per threshold and period" atomic even when two runs start at the same moment).

Spending is the sum of ``Execution.cost.total`` of the stored executions that ended in the period and match the
budget's scope, read from the store's cost rollups (``runvoy_core.cost.rollups``: hour buckets kept when a run
ends), so a check before a run reads a few buckets, never the period's runs (decision 1404). A store without
rollups is read the old way: the executions created in the period. Equivalents (what a local run would have cost
on a cloud) are not spending.
"""

from __future__ import annotations

import contextlib
import enum
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from runvoy_core.errors import BudgetExceeded, NotFound, ValidationFailed
from runvoy_core.logging import get_logger
from runvoy_core.models import Execution, ExecutionRequest, Money, utcnow
from runvoy_core.records import Record, RecordError

if TYPE_CHECKING:
    import pluggy

    from runvoy_core.ports.store import StorePort

log = get_logger(__name__)

DB_FILE = "budgets.sqlite"
DEFAULT_ALERT_AT = (50, 80, 100)
DEFAULT_ESTIMATE_SECONDS = 3600
"""The duration assumed for a run without a timeout when checking a budget (one hour)."""
REFUSED_MARK = -1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
SCOPE_KINDS = ("provider", "user", "label")


class BudgetPeriod(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """The UTC period containing ``now``: [start, end). Weeks start on Monday."""
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if self is BudgetPeriod.DAY:
            return day, day + timedelta(days=1)
        if self is BudgetPeriod.WEEK:
            start = day - timedelta(days=day.weekday())
            return start, start + timedelta(days=7)
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end


class BudgetScope(Record, kw_only=True):
    """Which runs count: all of them, or those of a provider, a user and/or carrying labels."""

    provider: str | None = None
    user: str | None = None
    labels: dict[str, str | None] = {}
    """label key -> required value (None: the label must be present with any value)."""

    @classmethod
    def parse(cls, items: Iterable[str]) -> BudgetScope:
        """``provider=aws``, ``user=alice``, ``label=team:data`` / ``label=team=data`` / ``label=team``."""
        scope = cls()
        for item in items:
            kind, sep, value = item.partition("=")
            kind, value = kind.strip(), value.strip()
            if not sep or kind not in SCOPE_KINDS or not value:
                raise ValidationFailed(
                    f"scope {item!r} must be provider=NAME, user=NAME or label=KEY:VALUE",
                    hint="for example: --scope provider=aws --scope label=team:data",
                )
            if kind == "label":
                key, sep2, label_value = value.partition("=") if "=" in value else value.rpartition(":")
                if not sep2:
                    key, label_value = value, ""
                scope.labels[key] = label_value or None
            elif kind == "provider":
                scope.provider = value
            else:
                scope.user = value
        return scope

    def describe(self) -> str:
        parts = []
        if self.provider:
            parts.append(f"provider={self.provider}")
        if self.user:
            parts.append(f"user={self.user}")
        for key, value in self.labels.items():
            parts.append(f"label={key}:{value}" if value is not None else f"label={key}")
        return ",".join(parts) or "all runs"

    def matches(self, *, provider: str, user: str | None, labels: dict[str, str]) -> bool:
        if self.provider is not None and provider != self.provider:
            return False
        if self.user is not None and user != self.user:
            return False
        for key, value in self.labels.items():
            if key not in labels or (value is not None and labels[key] != value):
                return False
        return True

    def matches_execution(self, execution: Execution) -> bool:
        return self.matches(provider=execution.provider, user=execution.user, labels=execution.request.labels)


class Budget(Record, kw_only=True):
    name: str
    amount: Money
    currency: str = "USD"
    period: BudgetPeriod = BudgetPeriod.MONTH
    scope: BudgetScope = msgspec.field(default_factory=BudgetScope)
    alert_at: list[int] = msgspec.field(default_factory=lambda: list(DEFAULT_ALERT_AT))
    enforce: bool = False
    created_at: datetime = msgspec.field(default_factory=utcnow)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _NAME.match(self.name):
            raise RecordError(
                f"budget name {self.name!r} must be letters, digits and _ . : - (at most 64)", "name"
            )
        if not self.amount.is_finite() or self.amount <= 0:
            raise RecordError("amount must be a positive number", "amount")
        if any(v <= 0 or v > 1000 for v in self.alert_at):
            raise RecordError("alert thresholds are percents between 1 and 1000", "alert_at")
        self.alert_at = sorted(set(self.alert_at))


def parse_alert_at(text: str) -> list[int]:
    try:
        values = [int(part.strip().rstrip("%")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValidationFailed(
            f"--alert-at {text!r} must be comma-separated percents", hint="for example: --alert-at 50,80,100"
        ) from None
    return values


def money(amount: Decimal, currency: str = "USD") -> str:
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{amount:.2f}" if abs(amount) >= 1 or amount == 0 else f"{symbol}{amount:.4f}"


class BudgetStore:
    """Budgets and their sent alerts in ``<home>/budgets.sqlite``."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / DB_FILE

    def exists(self) -> bool:
        return self.path.exists()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10.0)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS budgets (name TEXT PRIMARY KEY, data TEXT NOT NULL)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS budget_alerts (name TEXT NOT NULL, period_start TEXT NOT NULL,"
                " threshold INTEGER NOT NULL, at TEXT NOT NULL, PRIMARY KEY (name, period_start, threshold))"
            )
            with conn:
                yield conn
        finally:
            conn.close()

    def put(self, budget: Budget) -> Budget:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO budgets (name, data) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
                (budget.name, budget.model_dump_json()),
            )
        return budget

    def get(self, name: str) -> Budget:
        if not self.exists():
            raise NotFound(f"no budget named {name!r}", hint="list budgets with: runvoy budget list")
        with self._connect() as conn:
            row = conn.execute("SELECT data FROM budgets WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no budget named {name!r}", hint="list budgets with: runvoy budget list")
        return Budget.model_validate_json(row[0])

    def all(self) -> list[Budget]:
        if not self.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute("SELECT data FROM budgets ORDER BY name").fetchall()
        return [Budget.model_validate_json(r[0]) for r in rows]

    def remove(self, name: str) -> None:
        with self._connect() as conn:
            deleted = conn.execute("DELETE FROM budgets WHERE name = ?", (name,)).rowcount
            conn.execute("DELETE FROM budget_alerts WHERE name = ?", (name,))
        if not deleted:
            raise NotFound(f"no budget named {name!r}", hint="list budgets with: runvoy budget list")

    def mark_alerted(self, name: str, period_start: datetime, threshold: int) -> bool:
        """Record that ``threshold`` alerted in this period; False when it already had."""
        with self._connect() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO budget_alerts (name, period_start, threshold, at) VALUES (?, ?, ?, ?)",
                (name, period_start.isoformat(), threshold, utcnow().isoformat()),
            )
            return cursor.rowcount == 1

    def alerted(self, name: str, period_start: datetime) -> list[int]:
        if not self.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT threshold FROM budget_alerts WHERE name = ? AND period_start = ? ORDER BY threshold",
                (name, period_start.isoformat()),
            ).fetchall()
        return [int(r[0]) for r in rows]


def open_local_store(home: Path) -> StorePort:
    from runvoy_core.providers.local.store import LocalStore

    store: StorePort = LocalStore(home)
    return store


def executions_since(
    store: StorePort, since: datetime, labels: dict[str, str] | None = None
) -> Iterator[Execution]:
    """Every stored execution created since ``since`` (all pages)."""
    from runvoy_core.ports.store import ExecutionQuery

    cursor: str | None = None
    while True:
        page = store.list(ExecutionQuery(since=since, labels=labels or {}, limit=500, cursor=cursor))
        yield from page.executions
        if not page.cursor or not page.executions:
            return
        cursor = page.cursor


def spent_in_period(budget: Budget, store: StorePort, start: datetime) -> Decimal:
    """What the budget's runs cost since ``start``: from the store's cost rollups when it keeps them (a few
    hour buckets, however many runs), else from every run created since ``start``."""
    from runvoy_core.ports.optional import CostRollups, CostTotals

    if isinstance(store, CostRollups):
        # an active run has no cost yet: the ended ones, counted in the hour they ended, are all the spending
        rows = store.cost_totals(start) if isinstance(store, CostTotals) else store.rollups(start)
        return sum(
            (
                row.total
                for row in rows
                if row.currency == budget.currency
                and budget.scope.matches(provider=row.provider, user=row.user, labels=dict(row.labels))
            ),
            Decimal(0),
        )
    exact_labels = {k: v for k, v in budget.scope.labels.items() if v is not None}
    total = Decimal(0)
    for execution in executions_since(store, start, exact_labels):
        if execution.cost is None or execution.cost.currency != budget.currency:
            continue
        if budget.scope.matches_execution(execution):
            total += execution.cost.total
    return total


def estimated_run_cost(request: ExecutionRequest, *, provider: str, region: str | None) -> Decimal:
    """The request's cost over its timeout (or DEFAULT_ESTIMATE_SECONDS); 0 where nothing can be priced."""
    from runvoy_core.cost.calculator import price_resources
    from runvoy_core.cost.pricing import PricingError

    seconds = Decimal(str(request.timeout)) if request.timeout else Decimal(DEFAULT_ESTIMATE_SECONDS)
    try:
        breakdown = price_resources(provider, request.resources, seconds, region=region, equivalent=True)
    except PricingError:
        return Decimal(0)
    return breakdown.total


@dataclass
class BudgetStatus:
    budget: Budget
    period_start: datetime
    period_end: datetime
    spent: Decimal

    @property
    def percent(self) -> Decimal:
        return self.spent * 100 / self.budget.amount

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.budget.model_dump(mode="json"),
            "scope": self.budget.scope.describe(),
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "spent": str(self.spent),
            "percent": str(self.percent.quantize(Decimal("0.1"))),
        }


def budget_status(budget: Budget, store: StorePort, now: datetime | None = None) -> BudgetStatus:
    start, end = budget.period.bounds(now or utcnow())
    return BudgetStatus(budget, start, end, spent_in_period(budget, store, start))


def _dispatch(
    alert: dict[str, Any], hooks: pluggy.PluginManager | None, notify_url: str | None, timeout: float
) -> None:
    if hooks is not None:
        try:
            hooks.hook.runvoy_budget_alert(alert=alert)
        except Exception as exc:  # a plugin must not stop a run
            log.warning("budget.alert_hook_failed", error=str(exc))
    if notify_url:
        from runvoy_core.cost.notify import post_json

        post_json(notify_url, alert, timeout=timeout)


def check_budgets(
    request: ExecutionRequest,
    *,
    provider: str,
    region: str | None,
    user: str,
    home: Path,
    hooks: pluggy.PluginManager | None,
    notify_url: str | None,
    execution_id: str | None = None,
    store: StorePort | None = None,
    notify_timeout: float = 5.0,
    now: datetime | None = None,
) -> list[str]:
    """Check the budgets that apply to this run before it starts. Returns warning lines to print; alerts a
    threshold (hook + webhook) once per period; raises BudgetExceeded when an enforced budget would be
    exceeded by what was spent in the period plus this run's estimated cost."""
    budget_store = BudgetStore(home)
    budgets = [
        b for b in budget_store.all() if b.scope.matches(provider=provider, user=user, labels=request.labels)
    ]
    if not budgets:
        return []
    from runvoy_core.providers.local.store import LocalStore

    own_store = store is None
    active_store = store if store is not None else LocalStore(home)
    try:
        return _check(
            budgets,
            budget_store,
            active_store,
            request,
            provider=provider,
            region=region,
            user=user,
            hooks=hooks,
            notify_url=notify_url,
            execution_id=execution_id,
            notify_timeout=notify_timeout,
            now=now,
        )
    finally:
        if own_store and isinstance(active_store, LocalStore):
            active_store.close()


def _check(
    budgets: list[Budget],
    budget_store: BudgetStore,
    store: StorePort,
    request: ExecutionRequest,
    *,
    provider: str,
    region: str | None,
    user: str,
    hooks: pluggy.PluginManager | None,
    notify_url: str | None,
    execution_id: str | None,
    notify_timeout: float,
    now: datetime | None,
) -> list[str]:
    estimate = estimated_run_cost(request, provider=provider, region=region)
    warnings: list[str] = []
    refusal: BudgetExceeded | None = None
    for budget in budgets:
        status = budget_status(budget, store, now)
        projected = status.spent + estimate
        percent = projected * 100 / budget.amount
        alert = {
            "budget": budget.name,
            "period": budget.period.value,
            "period_start": status.period_start.isoformat(),
            "scope": budget.scope.describe(),
            "amount": str(budget.amount),
            "spent": str(status.spent),
            "estimated": str(estimate),
            "projected": str(projected),
            "percent": str(percent.quantize(Decimal("0.1"))),
            "currency": budget.currency,
            "execution_id": execution_id,
            "provider": provider,
            "user": user,
            "enforced": budget.enforce,
        }
        figures = (
            f"spent {money(status.spent, budget.currency)} this {budget.period.value} + "
            f"{money(estimate, budget.currency)} estimated for this run = {money(projected, budget.currency)} "
            f"of {money(budget.amount, budget.currency)} ({percent:.0f} %)"
        )
        # a run that costs nothing (local, unpriced provider) adds no spending: never refused, only warned
        if budget.enforce and estimate > 0 and projected > budget.amount:
            message = f"budget {budget.name!r} ({budget.scope.describe()}) would be exceeded: {figures}"
            if budget_store.mark_alerted(budget.name, status.period_start, REFUSED_MARK):
                _dispatch(
                    {**alert, "kind": "refused", "threshold_percent": 100, "message": message},
                    hooks,
                    notify_url,
                    notify_timeout,
                )
            refusal = refusal or BudgetExceeded(
                message,
                budget=budget.name,
                amount=str(budget.amount),
                spent=str(status.spent),
                estimated=str(estimate),
                projected=str(projected),
            )
            continue
        crossed = [t for t in budget.alert_at if percent >= t]
        new = [t for t in crossed if budget_store.mark_alerted(budget.name, status.period_start, t)]
        if new:
            threshold = max(new)
            message = f"budget {budget.name!r} passed its {threshold} % alert: {figures}"
            warnings.append(message)
            _dispatch(
                {**alert, "kind": "threshold", "threshold_percent": threshold, "message": message},
                hooks,
                notify_url,
                notify_timeout,
            )
        elif projected > budget.amount:
            warnings.append(f"budget {budget.name!r} is over its amount: {figures}")
    if refusal is not None:
        raise refusal
    return warnings
