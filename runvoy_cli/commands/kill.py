"""``runvoy kill ID``: graceful stop (SIGTERM / the cloud's stop), then a kill after the grace period."""

from __future__ import annotations

import sys

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_json

WAIT_MARGIN = 30.0  # seconds beyond the stop grace to wait for the end before giving up


@click.command("kill")
@click.argument("execution_id", metavar="ID", type=forms.EXECUTION_ID)
@provider_option
@click.option("--force", is_flag=True, help="Kill at once (SIGKILL), without the graceful stop.")
@click.option("--no-wait", is_flag=True, help="Ask for the stop and return without waiting for the end.")
@json_option
@handle_errors
def cli(execution_id: str, provider: str | None, force: bool, no_wait: bool, as_json: bool) -> None:
    """Stop an execution and wait until it has ended (ID may be any unique prefix).

    Prints the final status. Exit status: 0 once the run has ended (or, with --no-wait, once the stop was
    sent); 1 if it is still stopping after the grace period.
    """
    from runvoy_cli import views

    rv = state().runvoy(provider)
    before = rv.status(execution_id)
    if before.status.is_terminal:
        message(f"{before.id} had already ended ({before.status.value})")
        execution = before
    else:
        execution = rv.kill(before.id, force=force)
        if not no_wait:
            grace = 0.0 if force else execution.request.stop_grace
            execution = rv.wait(execution.id, timeout=grace + WAIT_MARGIN)
    if as_json:
        print_json(views.execution_json(execution))
    else:
        click.echo(views.summary_line(execution, prefix=""))
    if not no_wait and not execution.status.is_terminal:
        message(
            f"{execution.id} is still {execution.status.value}; check again with: runvoy status {execution.id}"
        )
        sys.exit(1)
