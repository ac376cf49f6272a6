"""``runvoy wait ID``: block until an execution ends; exit with its exit code (like `runvoy run`)."""

from __future__ import annotations

import sys

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_json

EXIT_STILL_RUNNING = 124
EXIT_INTERRUPTED = 130


@click.command("wait")
@click.argument("execution_id", metavar="ID", type=forms.EXECUTION_ID)
@provider_option
@click.option(
    "--timeout",
    metavar="DURATION",
    type=forms.WAIT_TIMEOUT,
    help="Give up after this long (exit 124), e.g. 30s, 10m (0.1s to 30d).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit status tells.")
@json_option
@handle_errors
def cli(execution_id: str, provider: str | None, timeout: str | None, quiet: bool, as_json: bool) -> None:
    """Wait for an execution to end and exit with its exit code (ID may be any unique prefix).

    Exit status: the command's exit code; 124 if it timed out (or is still running when --timeout expires);
    125 if runvoy could not run it or lost it.
    """
    from runvoy_cli import views
    from runvoy_core.inputs import WAIT_TIMEOUT
    from runvoy_core.lifecycle import cli_exit_code

    rv = state().runvoy(provider)
    try:
        execution = rv.wait(execution_id, timeout=WAIT_TIMEOUT.parse(timeout) if timeout else None)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    if as_json:
        print_json(views.execution_json(execution))
    elif not quiet:
        click.echo(views.summary_line(execution, prefix=""))
    if not execution.status.is_terminal:
        if not quiet:
            message(f"{execution.id} is still {execution.status.value} after {timeout}")
        sys.exit(EXIT_STILL_RUNNING)
    sys.exit(cli_exit_code(execution))
