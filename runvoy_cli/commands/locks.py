"""``runvoy locks list | status NAME | release NAME [--force]``: inspect and release named locks."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors, state
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_fields, print_json, print_table

if TYPE_CHECKING:
    from runvoy_core.locks import LockManager
    from runvoy_core.models import LockRecord


def _manager(provider: str | None) -> LockManager:
    """The lock manager over the selected provider's register, able to ask whether a holder still runs."""
    manager: LockManager = state().runvoy(provider).runner.locks
    return manager


def _age(record: LockRecord) -> float | None:
    # display only: acquired_at comes from the holder's machine; nothing is decided on it
    acquired = record.holder.acquired_at
    return None if acquired is None else max(0.0, (datetime.now(UTC) - acquired).total_seconds())


def _record_json(record: LockRecord, version: str, holder_status: str | None = None) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    data["version"] = version
    data["age_seconds"] = _age(record)
    data["lease_seconds"] = record.lease_ms / 1000
    if holder_status is not None:
        data["holder_status"] = holder_status
    return data


def _age_text(record: LockRecord) -> str | None:
    from runvoy_core.locks import format_age

    age = _age(record)
    return None if age is None else format_age(age)


def _holder_status(manager: LockManager, record: LockRecord) -> str:
    if record.state.value != "held" or manager.holder_status is None:
        return "-"
    try:
        return str(manager.holder_status(record.holder))
    except Exception:  # asking the provider failed: say so rather than fail the whole command
        return "unknown"


def _operator() -> str:
    return f"{state().settings().resolved_user}@{socket.gethostname()}"


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
    records = _manager(provider).list()
    if as_json:
        print_json([_record_json(r, v) for r, v in records])
        return
    if not records:
        message("no locks yet (runvoy run --lock NAME takes one)")
        return
    rows = [
        (
            r.name,
            r.state.value,
            r.holder.execution_id if r.state.value == "held" else None,
            r.holder.user if r.state.value == "held" else None,
            r.fence,
            _age_text(r) if r.state.value == "held" else None,
            f"{r.lease_ms / 1000:g}s",
        )
        for r, _ in records
    ]
    print_table(rows, ["name", "state", "holder", "user", "fence", "age", "lease"])


@cli.command("status")
@click.argument("name", type=forms.LOCK_REF)
@provider_option
@json_option
@handle_errors
def status(name: str, provider: str | None, as_json: bool) -> None:
    """Show one lock: who holds it, since when, its fence, lease, version and recent hand-overs."""
    from runvoy_core.errors import NotFound

    manager = _manager(provider)
    found = manager.get(name)
    if found is None:
        raise NotFound(f"no lock named {name!r}", hint=_missing_hint(manager, name))
    record, version = found
    holder_status = _holder_status(manager, record)
    from runvoy_core.lock_queue import waiting

    queue = waiting(manager.register, name)
    if as_json:
        data = _record_json(record, version, holder_status)
        data["queue"] = [
            {"ticket": number, "execution_id": h.execution_id, "user": h.user, "host": h.host}
            for number, h in queue
        ]
        print_json(data)
        return
    held = record.state.value == "held"
    h = record.holder
    fields: list[tuple[str, Any]] = [
        ("name", record.name),
        ("state", record.state.value),
        ("fence", record.fence),
        ("lease", f"{record.lease_ms / 1000:g}s"),
        ("version", version),
    ]
    label = "holder" if held else "last holder"
    fields += [
        (label, h.execution_id),
        ("holder status", holder_status if held else None),
        ("user", h.user),
        ("host", h.host),
        ("provider", h.provider),
        ("command", h.command),
        ("since" if held else "acquired", h.acquired_at),
        ("age", _age_text(record) if held else None),
        ("renewals", record.renewals),
        ("queue", ", ".join(f"{h.execution_id} (ticket {n})" for n, h in queue) if queue else None),
    ]
    print_fields(fields)
    if record.audit:
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
            for a in record.audit
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
    from runvoy_core.errors import LockHeld, NotFound, VersionConflict
    from runvoy_core.locks import describe_holder

    manager = _manager(provider)
    found = manager.get(name)
    if found is None:
        raise NotFound(f"no lock named {name!r}", hint=_missing_hint(manager, name))
    record, version = found
    if record.state.value != "held":
        _done(as_json, name, False, f"lock {name!r} is not held (fence {record.fence})", record.fence)
        return
    if not force:
        if manager.release_if_holder_ended(name):
            _done(
                as_json, name, True, f"released lock {name!r}: its holder execution has ended", record.fence
            )
            return
        raise LockHeld(
            f"lock {name!r} is held by {describe_holder(record)}, which is not known to have ended",
            hint=_release_hint(provider, name, record),
            lock=name,
        )
    if not yes:
        if as_json:
            raise click.UsageError("--force with --json needs --yes (there is no one to ask)")
        click.confirm(
            f"Release lock {name!r} held by {describe_holder(record)} (version {version})?\n"
            "The holder loses the lock and its fenced writes are refused.",
            abort=True,
            err=True,
        )
    if not manager.force_release(name, version, by=_operator()):
        raise VersionConflict(
            f"lock {name!r} changed since it was shown (version {version}); nothing was released",
            hint=f"look again with: runvoy locks status {name}",
        )
    _done(as_json, name, True, f"force-released lock {name!r} (was fence {record.fence})", record.fence)


def _done(as_json: bool, name: str, released: bool, text: str, fence: int) -> None:
    if as_json:
        print_json({"name": name, "released": released, "fence": fence, "message": text})
    else:
        message(text)


def _release_hint(provider: str | None, name: str, record: LockRecord) -> str:
    """`runvoy kill` only where there is a run to kill: a holder whose submitter died before recording its
    run has none (waiters take such a lock over within seconds)."""
    take_away = f"runvoy locks release {name} --force"
    execution_id = record.holder.execution_id
    if execution_id and state().runvoy(provider).store.get(execution_id) is not None:
        return f"stop it with: runvoy kill {execution_id}, or take the lock away with: {take_away}"
    return (
        f"its run {execution_id or '(none)'} was never recorded (its submitter stopped right after taking "
        f"the lock); the next run that waits for the lock takes it over, or take it away now with: {take_away}"
    )


def _missing_hint(manager: Any, name: str) -> str:
    """Point a lock with slots (NAME#1..NAME#N) out to someone who asked for NAME."""
    from runvoy_core.locks import SLOT_SEPARATOR

    slots = [record.name for record, _ in manager.list() if record.name.startswith(name + SLOT_SEPARATOR)]
    if slots:
        return f"{name!r} has slots: {', '.join(slots)} (for example: runvoy locks status {slots[0]})"
    return "run: runvoy locks list"
