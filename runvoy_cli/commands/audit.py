"""``runvoy audit verify|export``: check and export the team service's audit chain (decision 1509)."""

from __future__ import annotations

import sys
from typing import Any

import click

from runvoy_cli import forms
from runvoy_cli.context import handle_errors
from runvoy_cli.options import provider_option
from runvoy_cli.output import json_option, message, print_fields, print_json

BROKEN_EXIT = 1
"""``runvoy audit verify`` found the chain broken (0912: 1 is a check that answered "no")."""


@click.group("audit")
def cli() -> None:
    """Check and export the audit log of the runvoy server.

    Every mutating request, every refused one and every failed sign-in is an entry; each entry carries the
    hash of the one before, so an edited, removed, inserted or reordered entry is found by `verify`.
    Through the server you are signed in to (runvoy login) as its admin; without a server, straight on the
    provider's store (whoever holds its credentials).

    \b
    Examples:
      runvoy audit verify
      runvoy audit export --since 7d --format csv --output audit.csv
      runvoy audit export --since 2026-12-01 --until 2026-12-02 > day.jsonl
    """


@cli.command("verify")
@click.option(
    "--anchor",
    type=forms.AUDIT_ANCHOR,
    help="An entry's number and hash kept from an earlier verify (SEQ:HASH); that entry must still have it.",
)
@provider_option
@json_option
@handle_errors
def verify_cmd(anchor: str | None, provider: str | None, as_json: bool) -> None:
    """Walk the whole chain and report the first entry edited, removed, inserted or reordered (exit 1)."""
    from runvoy_cli.team import team_admin
    from runvoy_core import inputs

    report = team_admin(provider).audit_verify(anchor=inputs.AUDIT_ANCHOR.parse(anchor) if anchor else None)
    if as_json:
        print_json(report.as_dict())
    else:
        problem = report.problem
        print_fields(
            [
                ("chain", "intact" if problem is None else f"BROKEN ({problem.kind})"),
                ("entries", report.entries),
                ("first", report.first_at),
                ("last", report.last_at),
                ("last entry", report.last_seq),
                ("last hash", report.last_hash),
            ]
        )
        if problem is not None:
            message(f"error: audit log broken at entry {problem.seq}: {problem.message}")
            message(
                "hint: compare with an earlier export of the log (runvoy audit export) to see what changed"
            )
        elif report.entries:
            message(
                "keep the last hash somewhere else; later, `runvoy audit verify --anchor "
                f"{report.last_seq}:{report.last_hash}` proves the chain up to here was not rewritten"
            )
    if not report.ok:
        raise SystemExit(BROKEN_EXIT)


@cli.command("export")
@click.option(
    "--since",
    type=forms.AUDIT_TIME,
    help="Entries at or after this time: a duration back from now (7d, 24h) or a date (2026-12-01).",
)
@click.option(
    "--until",
    type=forms.AUDIT_TIME,
    help="Entries before this time: a duration back from now or a date (default: now).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one stored entry per line (hashes check out); csv: a spreadsheet's columns.",
)
@click.option("--output", "-o", type=forms.PATH, help="Write to this file (created 0600) instead of stdout.")
@provider_option
@handle_errors
def export_cmd(
    since: str | None, until: str | None, fmt: str, output: str | None, provider: str | None
) -> None:
    """Write the audit entries of a time range, in chain order."""
    from runvoy_cli.team import team_admin
    from runvoy_core import inputs
    from runvoy_core.errors import ValidationFailed
    from runvoy_core.models import utcnow
    from runvoy_core.team.audit import PAGE, AuditEntry, write_export

    now = utcnow()
    start = inputs.audit_time(since, now) if since else None
    end = inputs.audit_time(until, now) if until else None
    if start is not None and end is not None and start >= end:
        raise ValidationFailed(
            f"--since ({start:%Y-%m-%d %H:%M:%S} UTC) is not before --until ({end:%Y-%m-%d %H:%M:%S} UTC)",
            hint="give an earlier --since or a later --until",
        )
    admin = team_admin(provider)

    def pages() -> Any:
        after = 0
        while True:
            page: list[AuditEntry] = admin.audit_entries(since=start, until=end, after_seq=after, limit=PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].seq

    if output is None:
        count = write_export(pages(), sys.stdout, fmt)
        sys.stdout.flush()
        return
    import os

    from runvoy_core.errors import UsageError

    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise UsageError(
            f"cannot write the export to {output}: {exc.strerror}",
            hint="give --output a path in a folder you can write to",
        ) from None
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as out:
        count = write_export(pages(), out, fmt)
    message(f"exported {count} audit entr{'y' if count == 1 else 'ies'} to {output}")
