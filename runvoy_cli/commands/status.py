"""``runvoy status ID``: the record (converged with the provider), its cost and its event history."""

from __future__ import annotations

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, print_fields, print_json, print_table


@click.command("status")
@click.argument("execution_id", metavar="ID", type=forms.EXECUTION_ID)
@provider_option
@click.option("--no-events", is_flag=True, help="Leave out the event history.")
@json_option
@handle_errors
def cli(execution_id: str, provider: str | None, no_events: bool, as_json: bool) -> None:
    """Show an execution: status, reason, exit code, times, cost, lock and history.

    ID may be any unique prefix of the execution id.
    """
    from runvoy_cli import views

    rv = state().runvoy(provider)
    execution = rv.status(execution_id)
    events = [] if no_events else list(rv.events(execution.id))
    if as_json:
        print_json(views.execution_json(execution, None if no_events else events))
        return
    print_fields(views.status_fields(execution))
    if events:
        click.echo("\nhistory:")
        print_table(views.event_rows(events), ["at", "status", "event", "detail"])
