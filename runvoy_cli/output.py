"""Printing: data on stdout (a table for people, JSON with --json), messages on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(
        func
    )


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def print_json(data: Any) -> None:
    import json  # only --json output needs it

    sys.stdout.write(json.dumps(data, default=_default, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def message(text: str) -> None:
    """A message for the person at the terminal (stderr), never mixed into data."""
    click.echo(text, err=True)


def warn(text: str) -> None:
    click.echo(f"warning: {text}", err=True)


def format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return f"{value:.4f}" if value < 1 else f"{value:.2f}"
    return str(value)


def print_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned table on stdout (no colours: it must survive pipes and `grep`)."""
    cells = [[format_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    sys.stdout.write("\n".join(lines) + "\n")


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """A key: value block on stdout."""
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        sys.stdout.write(f"{key + ':':<{width + 1}} {format_cell(value)}\n")


def render_error(exc: BaseException) -> int:
    """Print a RunvoyError (or an unexpected exception) for a person; return the exit code.

    A RunvoyError is three lines on stderr: what happened, what to do, and its section of the error
    reference. Under ``--json`` the same fields (``error``, ``message``, ``hint``, ``docs`` and the error's
    details) are also one JSON object on stdout, where the script reads the command's data."""
    import os

    from runvoy_core.errors import RunvoyError

    if isinstance(exc, RunvoyError):
        click.echo(f"error: {exc.message}", err=True)
        click.echo(f"hint: {exc.hint}", err=True)
        click.echo(f"docs: {exc.docs}", err=True)
        if _json_requested():
            print_json(exc.to_dict())
        return exc.exit_code
    click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
    click.echo("hint: this is a bug in runvoy; run again with --log-level debug for the traceback", err=True)
    if os.environ.get("RUNVOY_DEBUG") or "--log-level=debug" in sys.argv or "debug" in sys.argv:
        import traceback

        traceback.print_exc()
    return 125


def _json_requested() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json"):
            return True
        ctx = ctx.parent
    return False
