"""``runvoy list``: executions, newest first."""

from __future__ import annotations

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import parse_pairs, provider_option
from runvoy_cli.output import json_option, message, print_json, print_table

STATUS_CHOICES = [
    "PENDING",
    "STARTING",
    "RUNNING",
    "STOPPING",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
    "TIMED_OUT",
    "LOST",
    "active",
    "ended",
]


@click.command("list")
@provider_option
@click.option(
    "--status",
    "-s",
    "statuses",
    multiple=True,
    type=click.Choice(STATUS_CHOICES, case_sensitive=False),
    help="Only these statuses (repeatable); 'active' and 'ended' group them.",
)
@click.option("--limit", "-n", type=forms.IntRange(1, 10_000), default=20, show_default=True)
@click.option(
    "--since",
    metavar="DURATION",
    type=forms.SINCE,
    help="Only runs created within this long, e.g. 1h, 7d (1s to 3650d).",
)
@click.option(
    "--label",
    "-l",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    type=forms.LABEL_PAIR,
    help="Only runs with this label.",
)
@click.option("--no-refresh", is_flag=True, help="Show the stored records without asking the provider.")
@json_option
@handle_errors
def cli(
    provider: str | None,
    statuses: tuple[str, ...],
    limit: int,
    since: str | None,
    labels: tuple[str, ...],
    no_refresh: bool,
    as_json: bool,
) -> None:
    """List executions, newest first (active ones are converged with the provider)."""
    from datetime import timedelta

    from runvoy_cli import views
    from runvoy_core.inputs import SINCE
    from runvoy_core.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Status, utcnow

    wanted: set[Status] = set()
    for name in statuses:
        if name.lower() == "active":
            wanted |= ACTIVE_STATUSES
        elif name.lower() == "ended":
            wanted |= TERMINAL_STATUSES
        else:
            wanted.add(Status(name.upper()))
    since_at = utcnow() - timedelta(seconds=SINCE.parse(since)) if since else None
    rv = state().runvoy(provider)
    executions = rv.list(
        statuses=wanted or None,
        limit=limit,
        since=since_at,
        labels=parse_pairs("--label", labels, "team=data") or None,
        refresh=not no_refresh,
    )
    if as_json:
        print_json([views.execution_json(e) for e in executions])
        return
    if not executions:
        message('no executions found (start one with: runvoy run "echo hello")')
        return
    now = utcnow()
    print_table([views.list_row(e, now) for e in executions], views.LIST_HEADERS)
