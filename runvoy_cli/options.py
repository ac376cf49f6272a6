"""Options shared by several commands, and parsing of option values into runvoy errors that name the flag."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def provider_option(func: F) -> F:
    from runvoy_cli.forms import PROVIDER

    return click.option(
        "--provider",
        "-p",
        "provider",
        default=None,
        metavar="NAME",
        type=PROVIDER,
        help="Provider to use (overrides the global --provider and the config).",
    )(func)


def parse_pairs(flag: str, items: Sequence[str], example: str) -> dict[str, str]:
    """``K=V`` items into a dict; an item without ``=`` is a usage error naming the flag."""
    from runvoy_core.errors import ValidationFailed

    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationFailed(
                f"{flag} {item!r}: expected NAME=VALUE", hint=f"for example: {flag} {example}"
            )
        pairs[key] = value
    return pairs


def check_value(flag: str, kind: str, value: str | None) -> None:
    """Reject a malformed --cpu/--memory/--timeout early, naming the flag and the accepted form."""
    if value is None:
        return
    from runvoy_core import units
    from runvoy_core.errors import ValidationFailed

    parser: Callable[[object], Any] = {
        "cpu": units.parse_cpu,
        "memory": units.parse_memory_mib,
        "duration": units.parse_duration,
    }[kind]
    try:
        parser(value)
    except ValueError as exc:
        ctx = click.get_current_context(silent=True)
        command = ctx.command_path if ctx is not None else "runvoy"
        raise ValidationFailed(f"{flag}: {exc}", hint=f"see: {command} --help") from None
