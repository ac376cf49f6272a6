"""Budgets end to end: spending from the local store, thresholds alerted once per period through the pluggy
hook and the webhook (a real HTTP server on 127.0.0.1), enforcement with the numbers in the error."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pluggy
import pytest

from runvoy_core.cost.budgets import (
    DEFAULT_ESTIMATE_SECONDS,
    Budget,
    BudgetPeriod,
    BudgetScope,
    BudgetStore,
    check_budgets,
    estimated_run_cost,
)
from runvoy_core.cost.calculator import estimate
from runvoy_core.errors import BudgetExceeded, ValidationFailed
from runvoy_core.models import Cost, Execution, ExecutionRequest, Resources, Status, new_execution_id, utcnow
from runvoy_core.plugins import hookspecs

D = Decimal
REQUEST = ExecutionRequest(
    command="make", resources=Resources.model_validate(dict(cpu=1, memory="2GiB")), timeout="1h"
)
RUN_ESTIMATE = estimate("aws", REQUEST.resources, 3600).total  # 0.04937


class WebhookSink:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.event = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                sink.received.append(
                    {
                        "body": json.loads(self.rfile.read(length)),
                        "content_type": self.headers["Content-Type"],
                    }
                )
                self.send_response(204)
                self.end_headers()
                sink.event.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/budget"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[WebhookSink]:
    sink = WebhookSink()
    yield sink
    sink.close()


@pytest.fixture
def webhook(webhook_server: WebhookSink) -> WebhookSink:
    webhook_server.received.clear()
    return webhook_server


class AlertCollector:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    @hookspecs.hookimpl
    def runvoy_budget_alert(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)


@pytest.fixture
def hooks() -> tuple[pluggy.PluginManager, AlertCollector]:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    collector = AlertCollector()
    pm.register(collector)
    return pm, collector


@pytest.fixture
def store(runvoy_home: Path) -> Any:
    from runvoy_core.providers.local.store import LocalStore

    return LocalStore(runvoy_home)


def record(
    store: Any,
    total: str,
    *,
    provider: str = "aws",
    user: str = "alice",
    labels: dict[str, str] | None = None,
    created_at: datetime | None = None,
    equivalents: dict[str, Decimal] | None = None,
) -> Execution:
    execution = Execution(
        id=new_execution_id(),
        provider=provider,
        request=ExecutionRequest(command="true", labels=labels or {}),
        status=Status.SUCCEEDED,
        user=user,
        created_at=created_at or utcnow(),
        cost=Cost(provider=provider, total=D(total), equivalents=equivalents or {}),
    )
    return store.create(execution)


def check(home: Path, store: Any, hooks: Any = None, url: str | None = None, **kwargs: Any) -> list[str]:
    params: dict[str, Any] = {"provider": "aws", "region": None, "user": "alice", "execution_id": "e1"}
    params.update(kwargs)
    request = params.pop("request", REQUEST)
    return check_budgets(request, home=home, hooks=hooks, notify_url=url, store=store, **params)


def test_no_budget_no_warning(runvoy_home: Path) -> None:
    assert (
        check_budgets(
            REQUEST, provider="aws", region=None, user="a", home=runvoy_home, hooks=None, notify_url=None
        )
        == []
    )


def test_threshold_alerts_once_per_period_through_hook_and_webhook(
    runvoy_home: Path, store: Any, hooks: Any, webhook: WebhookSink
) -> None:
    pm, collector = hooks
    BudgetStore(runvoy_home).put(Budget(name="monthly", amount=D(10), alert_at=[50, 80, 100]))
    record(store, "4.00")
    assert check(runvoy_home, store, pm, webhook.url) == []  # 40 %
    assert collector.alerts == [] and webhook.received == []

    record(store, "1.00")  # 5.00 + this run's 0.049 -> 50.5 %
    warnings = check(runvoy_home, store, pm, webhook.url)
    assert len(warnings) == 1 and "passed its 50 % alert" in warnings[0]
    assert "$5.00" in warnings[0] and "$10.00" in warnings[0]
    (alert,) = collector.alerts
    assert alert["kind"] == "threshold" and alert["threshold_percent"] == 50
    assert alert["budget"] == "monthly" and alert["execution_id"] == "e1" and alert["currency"] == "USD"
    assert D(alert["spent"]) == D("5.00") and D(alert["estimated"]) == RUN_ESTIMATE
    assert D(alert["projected"]) == D("5.00") + RUN_ESTIMATE
    assert webhook.received[0]["body"] == json.loads(json.dumps(alert))
    assert webhook.received[0]["content_type"] == "application/json"

    assert check(runvoy_home, store, pm, webhook.url) == [], "the 50 % alert is not repeated"
    assert len(collector.alerts) == 1 and len(webhook.received) == 1

    record(store, "4.00")  # 9.05 -> 90 %: the 80 % threshold
    warnings = check(runvoy_home, store, pm, webhook.url)
    assert "passed its 80 % alert" in warnings[0]
    assert [a["threshold_percent"] for a in collector.alerts] == [50, 80]
    assert BudgetStore(runvoy_home).alerted("monthly", BudgetPeriod.MONTH.bounds(utcnow())[0]) == [50, 80]


def test_jump_over_several_thresholds_sends_the_highest(runvoy_home: Path, store: Any, hooks: Any) -> None:
    pm, collector = hooks
    BudgetStore(runvoy_home).put(Budget(name="b", amount=D(1), alert_at=[50, 80, 100]))
    record(store, "2.00")
    warnings = check(runvoy_home, store, pm)
    assert "passed its 100 % alert" in warnings[0]
    assert [a["threshold_percent"] for a in collector.alerts] == [100]
    # over budget but not enforced: a warning on every run, no repeated alert
    warnings = check(runvoy_home, store, pm)
    assert "is over its amount" in warnings[0]
    assert len(collector.alerts) == 1


def test_enforced_budget_refuses_with_numbers(
    runvoy_home: Path, store: Any, hooks: Any, webhook: WebhookSink
) -> None:
    pm, collector = hooks
    BudgetStore(runvoy_home).put(Budget(name="cap", amount=D(1), enforce=True))
    record(store, "0.98")
    with pytest.raises(BudgetExceeded) as info:
        check(runvoy_home, store, pm, webhook.url)
    error = info.value
    assert "budget 'cap' (all runs) would be exceeded" in error.message
    assert "spent $0.9800 this month" in error.message
    assert f"${RUN_ESTIMATE:.4f} estimated" in error.message and "of $1.00" in error.message
    assert error.details["spent"] == "0.98" and error.details["amount"] == "1"
    assert error.exit_code == 125 and "budget" in error.hint
    assert [a["kind"] for a in collector.alerts] == ["refused"]
    assert webhook.received[0]["body"]["kind"] == "refused"
    with pytest.raises(BudgetExceeded):
        check(runvoy_home, store, pm, webhook.url)
    assert len(collector.alerts) == 1, "a refusal alerts once per period"


def test_enforced_budget_allows_a_run_that_fits(runvoy_home: Path, store: Any) -> None:
    BudgetStore(runvoy_home).put(Budget(name="cap", amount=D(1), enforce=True, alert_at=[100]))
    record(store, "0.90")
    assert check(runvoy_home, store) == []


def test_scope_provider_user_label(runvoy_home: Path, store: Any) -> None:
    budgets = BudgetStore(runvoy_home)
    budgets.put(Budget(name="aws", amount=D(1), enforce=True, scope=BudgetScope(provider="aws")))
    budgets.put(Budget(name="bob", amount=D(1), enforce=True, scope=BudgetScope(user="bob")))
    budgets.put(Budget(name="data", amount=D(1), enforce=True, scope=BudgetScope(labels={"team": "data"})))
    record(store, "5", provider="gcp", user="carol")  # counts for none of them
    assert check(runvoy_home, store) == []
    with pytest.raises(BudgetExceeded, match="'aws'"):
        record(store, "5", provider="aws", user="carol")
        check(runvoy_home, store)
    # a gcp run of bob's: only "bob" applies, and bob has spent nothing
    assert check(runvoy_home, store, provider="gcp", user="bob") == []
    record(store, "5", provider="gcp", user="dave", labels={"team": "data"})
    labelled = ExecutionRequest(command="x", resources=REQUEST.resources, labels={"team": "data"})
    with pytest.raises(BudgetExceeded, match="'data'"):
        check(runvoy_home, store, provider="gcp", user="erin", request=labelled)
    other_team = ExecutionRequest(command="x", resources=REQUEST.resources, labels={"team": "web"})
    assert check(runvoy_home, store, provider="gcp", user="erin", request=other_team) == []


def test_equivalents_are_not_spending(runvoy_home: Path, store: Any) -> None:
    BudgetStore(runvoy_home).put(Budget(name="all", amount=D(1), enforce=True))
    record(store, "0", provider="local", equivalents={"aws": D(50), "gcp": D(60)})
    assert check(runvoy_home, store, provider="local") == []


def test_only_the_current_period_counts(runvoy_home: Path, store: Any) -> None:
    BudgetStore(runvoy_home).put(Budget(name="daily", amount=D(1), period=BudgetPeriod.DAY, enforce=True))
    now = utcnow()
    record(store, "5", created_at=now - timedelta(days=2))
    assert check(runvoy_home, store, now=now) == []
    record(store, "5", created_at=now)
    with pytest.raises(BudgetExceeded, match="this day"):
        check(runvoy_home, store, now=now)


def test_default_duration_without_timeout() -> None:
    no_timeout = ExecutionRequest(command="x", resources=Resources.model_validate(dict(cpu=1, memory="2GiB")))
    assert (
        estimated_run_cost(no_timeout, provider="aws", region=None)
        == estimate("aws", no_timeout.resources, DEFAULT_ESTIMATE_SECONDS).total
    )
    short = ExecutionRequest(
        command="x", resources=Resources.model_validate(dict(cpu=1, memory="2GiB")), timeout="2m"
    )
    assert (
        estimated_run_cost(short, provider="aws", region=None) == estimate("aws", short.resources, 120).total
    )
    assert estimated_run_cost(short, provider="local", region=None) == 0
    assert estimated_run_cost(short, provider="acme", region=None) == 0


def test_webhook_down_never_breaks_a_run(runvoy_home: Path, store: Any, hooks: Any) -> None:
    pm, collector = hooks
    BudgetStore(runvoy_home).put(Budget(name="b", amount=D(1), alert_at=[10]))
    record(store, "0.5")
    closed = WebhookSink()
    url = closed.url
    closed.close()
    warnings = check(runvoy_home, store, pm, url, notify_timeout=0.5)
    assert "passed its 10 % alert" in warnings[0]
    assert len(collector.alerts) == 1


def test_failing_hook_never_breaks_a_run(runvoy_home: Path, store: Any) -> None:
    class Broken:
        @hookspecs.hookimpl
        def runvoy_budget_alert(self, alert: dict[str, Any]) -> None:
            raise RuntimeError("plugin bug")

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(Broken())
    BudgetStore(runvoy_home).put(Budget(name="b", amount=D(1), alert_at=[10]))
    record(store, "0.5")
    assert check(runvoy_home, store, pm)


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", "2026-11-27T15:00", "2026-11-27", "2026-11-28"),
        ("week", "2026-11-27T15:00", "2026-11-23", "2026-11-30"),
        ("month", "2026-11-27T15:00", "2026-11-01", "2026-12-01"),
        ("month", "2026-12-31T23:59", "2026-12-01", "2027-01-01"),
        ("month", "2026-01-31T00:00", "2026-01-01", "2026-02-01"),
    ],
)
def test_period_bounds(period: str, now: str, start: str, end: str) -> None:
    at = datetime.fromisoformat(now).replace(tzinfo=UTC)
    got = BudgetPeriod(period).bounds(at)
    assert (got[0].date().isoformat(), got[1].date().isoformat()) == (start, end)


def test_scope_parsing() -> None:
    scope = BudgetScope.parse(["provider=aws", "label=team:data", "user=alice", "label=env=prod", "label=ci"])
    assert scope.provider == "aws" and scope.user == "alice"
    assert scope.labels == {"team": "data", "env": "prod", "ci": None}
    assert scope.describe() == "provider=aws,user=alice,label=team:data,label=env:prod,label=ci"
    assert scope.matches(provider="aws", user="alice", labels={"team": "data", "env": "prod", "ci": "1"})
    assert not scope.matches(provider="aws", user="alice", labels={"team": "data", "env": "prod"})
    for bad in ("region=x", "provider", "provider="):
        with pytest.raises(ValidationFailed):
            BudgetScope.parse([bad])


def test_budget_validation() -> None:
    with pytest.raises(ValueError):
        Budget(name="x", amount=D(0))
    with pytest.raises(ValueError):
        Budget(name="bad name!", amount=D(1))
    assert Budget(name="x", amount=D(1), alert_at=[100, 50, 50]).alert_at == [50, 100]


def test_free_runs_are_never_refused_only_warned(runvoy_home: Path, store: Any) -> None:
    BudgetStore(runvoy_home).put(Budget(name="cap", amount=D(1), enforce=True, alert_at=[100]))
    record(store, "5")
    warnings = check(runvoy_home, store, provider="local")
    assert "passed its 100 % alert" in warnings[0]
    assert "is over its amount" in check(runvoy_home, store, provider="local")[0]
    with pytest.raises(BudgetExceeded):
        check(runvoy_home, store, provider="aws")


def test_runner_checks_budgets_before_a_local_run(
    runvoy_home: Path, store: Any, webhook: WebhookSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the public API: the runner calls check_budgets with the configured webhook; the warning reaches
    on_message, the alert the webhook, and the finished run stores its cost with equivalents."""
    from runvoy_core.api import Runvoy
    from runvoy_core.config import load_settings

    monkeypatch.setenv("RUNVOY_NOTIFY__WEBHOOK_URL", webhook.url)
    BudgetStore(runvoy_home).put(
        Budget(name="team", amount=D(1), alert_at=[50], scope=BudgetScope(user="ci"))
    )
    record(store, "0.75", user="ci")
    messages: list[str] = []
    with Runvoy(provider="local", settings=load_settings(user="ci")) as rv:
        execution = rv.run("echo hello", on_message=messages.append)
    assert any("budget 'team' passed its 50 % alert" in m for m in messages)
    assert webhook.received and webhook.received[0]["body"]["budget"] == "team"
    assert execution.cost is not None and execution.cost.total == 0
    assert execution.cost.provider == "local"
