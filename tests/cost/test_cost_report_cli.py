"""``runvoy cost report`` and ``runvoy budget set|list|show|rm`` over the local store."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runvoy_cli.main import cli
from runvoy_core.models import Cost, Execution, ExecutionRequest, Status, new_execution_id, utcnow

D = Decimal


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def store(runvoy_home: Path) -> Any:
    from runvoy_core.providers.local.store import LocalStore

    return LocalStore(runvoy_home)


def record(store: Any, provider: str, total: str, *, days_ago: float = 0, **fields: Any) -> None:
    labels = fields.pop("labels", {})
    lock = fields.pop("lock", None)
    equivalents = fields.pop("equivalents", {})
    store.create(
        Execution(
            id=new_execution_id(),
            provider=provider,
            request=ExecutionRequest(command="true", labels=labels, lock=lock),
            status=Status.SUCCEEDED,
            created_at=utcnow() - timedelta(days=days_ago),
            lock=lock,
            cost=Cost(provider=provider, total=D(total), billed_seconds=D(60), equivalents=equivalents),
            **fields,
        )
    )


@pytest.fixture
def history(store: Any) -> Any:
    record(store, "aws", "1.50", user="alice", labels={"team": "data"}, lock="etl")
    record(store, "aws", "0.50", user="bob", labels={"team": "web"})
    record(store, "gcp", "2.00", user="alice", labels={"team": "data", "env": "prod"})
    record(
        store, "local", "0", user="bob", equivalents={"aws": D("0.25"), "gcp": D("0.40"), "azure": D("0.26")}
    )
    record(store, "aws", "100", user="alice", days_ago=30)  # outside the default 7 days
    return store


def test_report_by_provider(history: Any) -> None:
    code, out, err = invoke("cost", "report", "--json")
    assert code == 0, err
    data = json.loads(out)
    rows = {r["key"]: r for r in data["rows"]}
    assert data["runs"] == 4 and D(data["total"]) == D("4.00")
    assert D(rows["aws"]["total"]) == D("2.00") and rows["aws"]["runs"] == 2
    assert D(rows["gcp"]["total"]) == D("2.00")
    assert D(rows["local"]["total"]) == 0 and D(rows["local"]["equivalents"]["aws"]) == D("0.25")
    code, out, err = invoke("cost", "report")
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["PROVIDER", "RUNS", "BILLED", "COST"]
    assert "ON AWS" in out.splitlines()[0]
    assert "total since" in err and "$4.00" in err


def test_report_by_user_label_lock_day(history: Any) -> None:
    rows = {r["key"]: r for r in json.loads(invoke("cost", "report", "--by", "user", "--json")[1])["rows"]}
    assert D(rows["alice"]["total"]) == D("3.50") and D(rows["bob"]["total"]) == D("0.50")
    rows = {r["key"]: r for r in json.loads(invoke("cost", "report", "--by", "label", "--json")[1])["rows"]}
    assert D(rows["team=data"]["total"]) == D("3.50") and D(rows["env=prod"]["total"]) == D("2.00")
    assert rows["-"]["runs"] == 1
    rows = {r["key"]: r for r in json.loads(invoke("cost", "report", "--by", "lock", "--json")[1])["rows"]}
    assert D(rows["etl"]["total"]) == D("1.50")
    data = json.loads(invoke("cost", "report", "--by", "day", "--since", "60d", "--json")[1])
    assert data["runs"] == 5 and len(data["rows"]) == 2


def test_report_provider_filter_and_empty(history: Any) -> None:
    data = json.loads(invoke("cost", "report", "--provider", "gcp", "--json")[1])
    assert data["runs"] == 1 and data["rows"][0]["key"] == "gcp"
    code, out, err = invoke("cost", "report", "--provider", "azure")
    assert code == 0 and out == "" and "no executions" in err


def test_budget_cli_round_trip(history: Any) -> None:
    code, _, err = invoke(
        "budget",
        "set",
        "team-data",
        "--amount",
        "50",
        "--period",
        "month",
        "--scope",
        "label=team:data",
        "--alert-at",
        "50,80,100",
        "--enforce",
    )
    assert code == 0, err
    assert "budget 'team-data' created: $50.00 per month for label=team:data" in err and "enforced" in err
    code, out, _ = invoke("budget", "list", "--json")
    (budget,) = json.loads(out)
    assert budget["name"] == "team-data" and budget["enforce"] is True
    assert D(budget["spent"]) == D("3.50") and budget["scope"] == "label=team:data"
    code, out, _ = invoke("budget", "list")
    assert "team-data" in out and "$3.50" in out and "7 %" in out
    code, out, _ = invoke("budget", "show", "team-data")
    assert "alerts sent: none" in out and "$3.50 (7.0 %)" in out
    code, _, err = invoke("budget", "set", "team-data", "--amount", "5", "--scope", "label=team:data")
    assert "updated" in err
    code, out, _ = invoke("budget", "show", "team-data", "--json")
    assert json.loads(out)["amount"] == "5" and json.loads(out)["enforce"] is False
    code, _, err = invoke("budget", "rm", "team-data")
    assert code == 0 and "removed" in err
    code, _, err = invoke("budget", "show", "team-data")
    assert code == 125 and "no budget named 'team-data'" in err
    code, _, err = invoke("budget", "list")
    assert "no budgets" in err


def test_budget_set_rejects_bad_input() -> None:
    assert invoke("budget", "set", "x", "--amount", "abc")[0] == 125
    assert invoke("budget", "set", "x", "--amount", "-5")[0] == 125
    assert invoke("budget", "set", "x", "--amount", "5", "--scope", "zone=a")[0] == 125
    assert invoke("budget", "set", "bad name", "--amount", "5")[0] == 125
