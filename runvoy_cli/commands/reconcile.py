"""``runvoy reconcile``: converge records nobody watches, mark orphans, find tasks without a record."""

from __future__ import annotations

import click

from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_json, print_table


@click.command("reconcile")
@provider_option
@click.option("--dry-run", is_flag=True, help="Only say what would be done.")
@json_option
@handle_errors
def cli(provider: str | None, dry_run: bool, as_json: bool) -> None:
    """Repair records and tasks that disagree.

    Finalizes active records whose task has ended, marks records whose task never started as LOST, and
    stops runvoy-tagged tasks that have no record. `status`, `wait` and `list` do the first part on read.
    """
    rv = state().runvoy(provider)
    actions = rv.reconcile(dry_run=dry_run)
    if as_json:
        print_json(actions)
        return
    if not actions:
        message(f"nothing to repair on provider {rv.provider_name!r}")
        return
    rows = []
    for action in actions:
        change = f"{action['from']} -> {action['to']}" if "from" in action else action.get("status", "")
        rows.append(
            [
                action.get("execution"),
                action.get("action"),
                change,
                action.get("reason") or action.get("task_ref"),
            ]
        )
    print_table(rows, ["execution", "action", "change", "detail"])
