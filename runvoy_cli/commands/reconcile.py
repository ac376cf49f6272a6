"""``runvoy reconcile``: converge records nobody watches, mark orphans, find tasks without a record."""

from __future__ import annotations

from typing import Any

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
    stops this store's tasks that have no record. Tasks tagged with another store (another config sharing
    the cloud), or with none (started by an older runvoy), are listed and left alone. `status`, `wait` and
    `list` do the first part on read. --dry-run changes nothing anywhere.
    """
    rv = state().runvoy(provider)
    actions = rv.reconcile(dry_run=dry_run)
    if as_json:
        print_json(actions)
        return
    if not actions:
        message(f"nothing to repair on provider {rv.provider_name!r}")
        return
    done = "dry run: nothing was changed; run again without --dry-run to apply" if dry_run else None
    rows = []
    for action in actions:
        change = f"{action['from']} -> {action['to']}" if "to" in action else action.get("status", "")
        rows.append(
            [
                action.get("execution"),
                action.get("action"),
                change,
                _detail(action),
            ]
        )
    print_table(rows, ["execution", "action", "change", "detail"])
    if done:
        message(done)


def _detail(action: dict[str, Any]) -> str | None:
    if str(action.get("action", "")).startswith(("belongs to another store", "left alone")):
        # the action says why; which task (and whose) is what the reader needs next
        store = f" (store {action['store']})" if action.get("store") else ""
        return f"{action.get('task_ref')}{store}"
    detail = action.get("reason") or action.get("task_ref")
    return None if detail is None else str(detail)
