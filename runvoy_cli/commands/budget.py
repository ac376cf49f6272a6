"""``runvoy budget set|list|show|rm``: spending budgets checked before every run."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.output import json_option, message, print_fields, print_json, print_table


def _stores() -> tuple[Any, Any]:
    from runvoy_core.cost.budgets import BudgetStore, open_local_store

    home = state().settings().home
    return BudgetStore(home), open_local_store(home)


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
    from runvoy_core.config import describe_validation_error
    from runvoy_core.cost.budgets import Budget, BudgetScope, BudgetStore, parse_alert_at
    from runvoy_core.errors import NotFound, ValidationFailed

    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise ValidationFailed(
            f"--amount {amount!r} is not a number", hint="for example: --amount 50"
        ) from None
    budgets = BudgetStore(state().settings().home)
    try:
        created_at = budgets.get(name).created_at
    except NotFound:
        created_at = None
    try:
        budget = Budget.model_validate(
            {
                "name": name,
                "amount": value,
                "currency": currency.upper(),
                "period": period,
                "scope": BudgetScope.parse(scopes).model_dump(mode="json"),
                "alert_at": parse_alert_at(alert_at),
                "enforce": enforce,
                **({"created_at": created_at} if created_at else {}),
            }
        )
    except ValueError as exc:
        raise ValidationFailed(f"invalid budget: {describe_validation_error(exc)}") from None
    budgets.put(budget)
    if as_json:
        print_json(budget.model_dump(mode="json"))
        return
    verb = "updated" if created_at else "created"
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
    from runvoy_core.cost.budgets import budget_status

    budgets, store = _stores()
    statuses = [budget_status(b, store) for b in budgets.all()]
    if as_json:
        print_json([s.as_dict() for s in statuses])
        return
    if not statuses:
        message("no budgets; create one with: runvoy budget set NAME --amount 50 --period month")
        return
    print_table(
        [
            [
                s.budget.name,
                _money(s.budget.amount, s.budget.currency),
                s.budget.period.value,
                s.budget.scope.describe(),
                _money(s.spent, s.budget.currency),
                f"{s.percent:.0f} %",
                "yes" if s.budget.enforce else "no",
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
    from runvoy_core.cost.budgets import REFUSED_MARK, budget_status

    budgets, store = _stores()
    status = budget_status(budgets.get(name), store)
    alerted = budgets.alerted(name, status.period_start)
    if as_json:
        print_json({**status.as_dict(), "alerted": alerted})
        return
    b = status.budget
    sent = [f"{t} %" for t in alerted if t != REFUSED_MARK] + (
        ["refused a run"] if REFUSED_MARK in alerted else []
    )
    print_fields(
        [
            ("name", b.name),
            ("amount", f"{_money(b.amount, b.currency)} per {b.period.value}"),
            ("scope", b.scope.describe()),
            ("enforced", "yes" if b.enforce else "no"),
            ("alert at", ", ".join(f"{t} %" for t in b.alert_at)),
            ("period", f"{status.period_start:%Y-%m-%d} to {status.period_end:%Y-%m-%d} (UTC)"),
            ("spent", f"{_money(status.spent, b.currency)} ({status.percent:.1f} %)"),
            ("alerts sent", ", ".join(sent) or "none"),
            ("created", b.created_at),
        ]
    )


@cli.command("rm")
@click.argument("name", type=forms.BUDGET_NAME)
@handle_errors
def rm_cmd(name: str) -> None:
    """Delete the budget NAME."""
    from runvoy_core.cost.budgets import BudgetStore

    BudgetStore(state().settings().home).remove(name)
    message(f"budget {name!r} removed")
