"""``runvoy locks list | status NAME | release NAME [--force]``: inspect and release named locks.

Each subcommand prints what one method of the Python API returns (``Runvoy.list_locks``, ``lock_status``,
``release_lock``; decision 1512), so it works the same on a provider of this machine and through a server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_fields, print_json, print_table

if TYPE_CHECKING:
    from runvoy_core.models import LockRecord


def _age_text(lock: dict[str, Any]) -> str | None:
    from runvoy_core.locks import format_age

    age = lock.get("age_seconds")
    return None if age is None else format_age(age)


def _lease_text(lock: dict[str, Any]) -> str:
    return f"{lock['lease_seconds']:g}s"


def _record(lock: dict[str, Any]) -> LockRecord:
    """The LockRecord inside a lock as the API gives it (for the one-line description of its holder)."""
    from runvoy_core.models import LockRecord

    fields = set(LockRecord.__struct_fields__)
    return LockRecord.model_validate({k: v for k, v in lock.items() if k in fields})


@click.group("locks")
def cli() -> None:
    """Inspect and release named locks (the ones `runvoy run --lock NAME` takes).

    \b
    Examples:
      runvoy locks list
      runvoy locks status deploy
      runvoy locks release deploy            # only if its holder execution has ended
      runvoy locks release deploy --force    # asks first; --yes to skip the question
    """


@cli.command("list")
@provider_option
@json_option
@handle_errors
def list_locks(provider: str | None, as_json: bool) -> None:
    """List locks: name, state, holder execution, fence, age and lease."""
    locks = state().runvoy(provider).list_locks()
    if as_json:
        print_json(locks)
        return
    if not locks:
        message("no locks yet (runvoy run --lock NAME takes one)")
        return
    rows = []
    for lock in locks:
        held = lock["state"] == "held"
        holder = lock.get("holder") or {}
        rows.append(
            (
                lock["name"],
                lock["state"],
                holder.get("execution_id") if held else None,
                holder.get("user") if held else None,
                lock["fence"],
                _age_text(lock) if held else None,
                _lease_text(lock),
            )
        )
    print_table(rows, ["name", "state", "holder", "user", "fence", "age", "lease"])


@cli.command("status")
@click.argument("name", type=forms.LOCK_REF)
@provider_option
@json_option
@handle_errors
def status(name: str, provider: str | None, as_json: bool) -> None:
    """Show one lock: who holds it, since when, its fence, lease, version and recent hand-overs."""
    lock = state().runvoy(provider).lock_status(name)
    if as_json:
        print_json(lock)
        return
    held = lock["state"] == "held"
    h = lock.get("holder") or {}
    queue = lock.get("queue") or []
    fields: list[tuple[str, Any]] = [
        ("name", lock["name"]),
        ("state", lock["state"]),
        ("fence", lock["fence"]),
        ("lease", _lease_text(lock)),
        ("version", lock["version"]),
    ]
    label = "holder" if held else "last holder"
    fields += [
        (label, h.get("execution_id")),
        ("holder status", lock.get("holder_status") if held else None),
        ("user", h.get("user")),
        ("host", h.get("host")),
        ("provider", h.get("provider")),
        ("command", h.get("command")),
        ("since" if held else "acquired", _record(lock).holder.acquired_at),
        ("age", _age_text(lock) if held else None),
        ("renewals", lock.get("renewals")),
        ("queue", ", ".join(f"{q['execution_id']} (ticket {q['ticket']})" for q in queue) if queue else None),
    ]
    print_fields(fields)
    audit = lock.get("audit") or []
    if audit:
        click.echo("\naudit:")
        rows = [
            (
                a.get("at"),
                a.get("event"),
                a.get("by"),
                a.get("stolen_from") or a.get("execution_id"),
                a.get("fence"),
                a.get("reason"),
            )
            for a in audit
        ]
        print_table(rows, ["at", "event", "by", "execution", "fence", "reason"])


@cli.command("release")
@click.argument("name", type=forms.LOCK_REF)
@click.option(
    "--force",
    is_flag=True,
    help="Release even if the holder may still run (it loses the lock; its fenced writes are refused).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation with --force.")
@provider_option
@json_option
@handle_errors
def release(name: str, force: bool, yes: bool, provider: str | None, as_json: bool) -> None:
    """Release a lock whose holder has ended; with --force, whoever holds it.

    Without --force the lock is released only when its holder execution is known to have ended. --force is a
    compare-and-swap on the version shown in the question: if the lock changed meanwhile, nothing happens.
    """
    rv = state().runvoy(provider)
    version = None
    if force and not yes:
        lock = rv.lock_status(name)
        if lock["state"] == "held":
            if as_json:
                raise click.UsageError("--force with --json needs --yes (there is no one to ask)")
            from runvoy_core.locks import describe_holder

            version = lock["version"]
            click.confirm(
                f"Release lock {name!r} held by {describe_holder(_record(lock))} (version {version})?\n"
                "The holder loses the lock and its fenced writes are refused.",
                abort=True,
                err=True,
            )
    result = rv.release_lock(name, force=force, version=version)
    if as_json:
        print_json(result)
    else:
        message(result["message"])
