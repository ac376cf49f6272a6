"""``runvoy budget set|list|show|rm``: spending budgets checked before every run.

Each subcommand prints what one method of the Python API returns (``Runvoy.set_budget``, ``list_budgets``,
``show_budget``, ``remove_budget``; decision 1512), so it works the same through a server.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.output import json_option, message, print_fields, print_json, print_table


def _percent(status: dict[str, Any]) -> Decimal:
    """Of the amount, spent: exact (the API's ``percent`` is rounded to a tenth)."""
    return Decimal(status["spent"]) * 100 / Decimal(status["amount"])


def _created(status: dict[str, Any]) -> Any:
    from datetime import datetime

    created = status.get("created_at")
    return datetime.fromisoformat(created) if created else None


def _money(amount: Decimal, currency: str) -> str:
    from runvoy_core.cost.budgets import money

    return money(amount, currency)


@click.group("budget")
def cli() -> None:
    """Set and inspect spending budgets.

    \b
    Examples:
      runvoy budget set team-data --amount 50 --period month --scope label=team:data --enforce
      runvoy budget set aws-daily --amount 5 --period day --scope provider=aws --alert-at 80,100
      runvoy budget list
    """


@cli.command("set")
@click.argument("name", type=forms.BUDGET_NAME)
@click.option(
    "--amount",
    required=True,
    type=forms.AMOUNT,
    help="Amount per period, in the currency (e.g. 50 or 12.50).",
)
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="month", show_default=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=forms.SCOPE,
    help="Which runs count: provider=NAME, user=NAME, label=KEY:VALUE (repeatable; all must match).",
)
@click.option(
    "--alert-at",
    default="50,80,100",
    show_default=True,
    type=forms.ALERT_AT,
    help="Alert thresholds, percent of the amount (1 to 1000).",
)
@click.option("--enforce/--no-enforce", default=False, help="Refuse runs that would exceed the budget.")
@click.option("--currency", default="USD", show_default=True, type=forms.CURRENCY)
@json_option
@handle_errors
def set_cmd(
    name: str,
    amount: str,
    period: str,
    scopes: tuple[str, ...],
    alert_at: str,
    enforce: bool,
    currency: str,
    as_json: bool,
) -> None:
    """Create or replace the budget NAME."""
    from runvoy_core.cost.budgets import Budget

    result = (
        state()
        .runvoy()
        .set_budget(
            name,
            amount=amount,
            period=period,
            scopes=list(scopes),
            alert_at=alert_at,
            enforce=enforce,
            currency=currency,
        )
    )
    if as_json:
        print_json(result["budget"])
        return
    budget = Budget.model_validate(result["budget"])
    verb = "created" if result["created"] else "updated"
    message(
        f"budget {name!r} {verb}: {_money(budget.amount, budget.currency)} per {budget.period.value} for "
        f"{budget.scope.describe()}, alerts at {', '.join(f'{t} %' for t in budget.alert_at)}"
        + (", enforced" if budget.enforce else "")
    )


@cli.command("list")
@json_option
@handle_errors
def list_cmd(as_json: bool) -> None:
    """Budgets with what was spent in the current period."""
    statuses = state().runvoy().list_budgets()
    if as_json:
        print_json(statuses)
        return
    if not statuses:
        message("no budgets; create one with: runvoy budget set NAME --amount 50 --period month")
        return
    print_table(
        [
            [
                s["name"],
                _money(Decimal(s["amount"]), s["currency"]),
                s["period"],
                s["scope"],
                _money(Decimal(s["spent"]), s["currency"]),
                f"{_percent(s):.0f} %",
                "yes" if s["enforce"] else "no",
            ]
            for s in statuses
        ],
        ["name", "amount", "period", "scope", "spent", "used", "enforced"],
    )


@cli.command("show")
@click.argument("name", type=forms.BUDGET_NAME)
@json_option
@handle_errors
def show_cmd(name: str, as_json: bool) -> None:
    """One budget: definition, spending this period and the alerts already sent."""
    from datetime import datetime

    from runvoy_core.cost.budgets import REFUSED_MARK

    status = state().runvoy().show_budget(name)
    if as_json:
        print_json(status)
        return
    alerted = status.get("alerted") or []
    currency = status["currency"]
    sent = [f"{t} %" for t in alerted if t != REFUSED_MARK] + (
        ["refused a run"] if REFUSED_MARK in alerted else []
    )
    period_start = datetime.fromisoformat(status["period_start"])
    period_end = datetime.fromisoformat(status["period_end"])
    print_fields(
        [
            ("name", status["name"]),
            ("amount", f"{_money(Decimal(status['amount']), currency)} per {status['period']}"),
            ("scope", status["scope"]),
            ("enforced", "yes" if status["enforce"] else "no"),
            ("alert at", ", ".join(f"{t} %" for t in status["alert_at"])),
            ("period", f"{period_start:%Y-%m-%d} to {period_end:%Y-%m-%d} (UTC)"),
            ("spent", f"{_money(Decimal(status['spent']), currency)} ({_percent(status):.1f} %)"),
            ("alerts sent", ", ".join(sent) or "none"),
            ("created", _created(status)),
        ]
    )


@cli.command("rm")
@click.argument("name", type=forms.BUDGET_NAME)
@handle_errors
def rm_cmd(name: str) -> None:
    """Delete the budget NAME."""
    state().runvoy().remove_budget(name)
    message(f"budget {name!r} removed")
