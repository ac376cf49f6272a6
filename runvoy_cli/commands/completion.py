"""``runvoy completion bash|zsh|fish``: the shell's completion script, and the completers of runvoy's values.

The script is click's (decision 2121): the shell runs ``runvoy`` again with ``_RUNVOY_COMPLETE`` set, and
click answers from the command tree, so commands and options complete with no list kept here. Values that
only the user's data knows (providers, profiles, execution ids, lock names, playbook files) come from the
completers below, attached to the click types of runvoy_cli/forms.py. A completer never raises and never
writes to the terminal: a broken config or store, or a cloud that does not answer within
``LOOKUP_SECONDS``, gives no completions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_RUNVOY_COMPLETE"
RECENT_RUNS = 20
"""Execution ids offered: the newest runs of the store, one small page."""
LOOKUP_SECONDS = 5.0
"""A completion waits this long for a cloud's store (it may be slow or unreachable), then offers nothing.
The local store is on this disk: it is read without a deadline, which a loaded machine could miss."""
PLAYBOOK_SUFFIXES = (".yml", ".yaml")
MAX_DESCENT = 8
"""How many levels of lone directories a playbook completion walks down at once."""
HELP_WIDTH = 60


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def cli(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    \b
    Enable it (see docs/user-guide.md, "Shell completion"):
      bash:  eval "$(runvoy completion bash)"            in ~/.bashrc
      zsh:   eval "$(runvoy completion zsh)"             in ~/.zshrc (after compinit)
      fish:  runvoy completion fish > ~/.config/fish/completions/runvoy.fish
    """
    from click.shell_completion import get_completion_class

    from runvoy_cli.main import cli as root

    completion_class = get_completion_class(shell)
    assert completion_class is not None  # every name of SHELLS is one of click's
    click.echo(completion_class(root, {}, "runvoy", COMPLETE_VAR).source())


def complete_value(kind: str, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """The completions of a value of ``kind``; nothing at all when anything goes wrong."""
    completer = COMPLETERS.get(kind)
    if completer is None:
        return []
    _quiet_stderr()
    try:
        items = completer(ctx, incomplete)
    except Exception:  # a completion must never show a traceback in the user's prompt
        return []
    return [item for item in items if str(item.value).startswith(incomplete)]


def _quiet_stderr() -> None:
    # the shell shows this process's stderr in the middle of the prompt line: a config warning or a
    # provider's log line there would garble it. Only while answering a completion request.
    if os.environ.get(COMPLETE_VAR):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            pass


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= HELP_WIDTH else text[: HELP_WIDTH - 1] + "…"


def _line_option(ctx: click.Context, name: str) -> Any:
    """The value of option ``name`` as typed on the line so far: the command's own, else a parent's."""
    current: click.Context | None = ctx
    while current is not None:
        value = current.params.get(name)
        if value:
            return value
        current = current.parent
    return None


def _with_deadline(ctx: click.Context, fn: Callable[[], list[CompletionItem]]) -> list[CompletionItem]:
    """``fn()``; for a cloud provider in a daemon thread, given up after LOOKUP_SECONDS (the process exits
    right after a completion, so an abandoned lookup costs nothing)."""
    if _state(ctx).runvoy().provider_name == "local":
        return fn()
    result: list[list[CompletionItem]] = []

    def target() -> None:
        try:
            result.append(fn())
        except Exception:
            result.append([])

    thread = threading.Thread(target=target, name="runvoy-completion", daemon=True)
    thread.start()
    thread.join(LOOKUP_SECONDS)
    return result[0] if result else []


def _state(ctx: click.Context) -> Any:
    """One CliState per completion request, from the provider and profile typed on the line so far."""
    from runvoy_cli.context import CliState

    root = ctx.find_root()
    if not isinstance(root.meta.get("runvoy.completion"), CliState):
        root.meta["runvoy.completion"] = CliState(
            provider=_line_option(ctx, "provider"), profile=_line_option(ctx, "profile"), log_level="error"
        )
    return root.meta["runvoy.completion"]


def _api(ctx: click.Context) -> Any:
    return _state(ctx).runvoy()


def providers(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    from runvoy_core.plugins.manager import get_plugins

    return [
        CompletionItem(spec.name, help=_short(spec.description or spec.distribution or "built in"))
        for spec in get_plugins().registry.specs()
    ]


def profiles(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    import tomllib

    from runvoy_core.paths import default_config_path

    path = default_config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    sections = data.get("profiles")
    if not isinstance(sections, dict):
        return []
    items = [CompletionItem("default", help="the top level of the config file")]
    for name, section in sections.items():
        provider = section.get("provider") if isinstance(section, dict) else None
        items.append(CompletionItem(name, help=f"provider {provider}" if isinstance(provider, str) else ""))
    return items


def executions(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    def lookup() -> list[CompletionItem]:
        records = _api(ctx).list(limit=RECENT_RUNS, refresh=False)
        return [
            CompletionItem(record.id, help=_short(f"{record.status.value} {record.request.shell_command()}"))
            for record in records
        ]

    return _with_deadline(ctx, lookup)


def locks(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    def lookup() -> list[CompletionItem]:
        items = []
        for record, _ in _api(ctx).runner.locks.list():
            held = record.state.value == "held"
            holder = record.holder.execution_id if held else None
            items.append(
                CompletionItem(record.name, help=f"held by {holder}" if holder else record.state.value)
            )
        return items

    return _with_deadline(ctx, lookup)


def playbooks(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """Playbook files (``*.yml``, ``*.yaml``) and the directories on the way to them. When a single
    directory is all that matches, its entries are offered instead: bash would put a space after a lone
    directory, and the user would have to delete it to go on."""
    items = _entries(incomplete)
    for _ in range(MAX_DESCENT):
        if len(items) != 1 or not str(items[0].value).endswith("/"):
            break
        inside = _entries(str(items[0].value))
        if not inside:
            break
        items = inside
    return items


def _entries(incomplete: str) -> list[CompletionItem]:
    folder, _, start = incomplete.rpartition("/")
    prefix = f"{folder}/" if folder else ""
    base = Path(os.path.expanduser(folder) if folder else ".")
    items = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        if not entry.name.startswith(start) or (entry.name.startswith(".") and not start.startswith(".")):
            continue
        if entry.is_dir():
            items.append(CompletionItem(f"{prefix}{entry.name}/", help="directory"))
        elif entry.suffix in PLAYBOOK_SUFFIXES:
            items.append(CompletionItem(f"{prefix}{entry.name}", help="playbook"))
    return items


COMPLETERS: dict[str, Callable[[click.Context, str], list[CompletionItem]]] = {
    "providers": providers,
    "profiles": profiles,
    "executions": executions,
    "locks": locks,
    "playbooks": playbooks,
}
