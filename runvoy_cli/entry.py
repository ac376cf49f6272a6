"""The ``runvoy`` console script. ``runvoy --help`` is answered from a cache without importing click.

``runvoy --help`` has a 50 ms budget (issue 14) and importing click alone takes most of it on a small machine.
The top-level help changes only when runvoy changes and depends only on the terminal's width, so the text
click renders is kept in ``<RUNVOY_HOME>/cache`` under a key made of both, and printed from there afterwards
(decision 1412). For ``runvoy run`` the local supervisor is started first, before anything is imported, so
that it starts on the other core while the CLI starts (decision 0213). Everything else goes to
``runvoy_cli.main``.
"""

import os
import sys

HELP_ARGS = (["--help"], ["-h"])
GLOBAL_OPTIONS_WITH_VALUE = ("--provider", "-p", "--profile", "--log-format", "--log-level")
MAX_CONTENT_WIDTH = 100
"""The CLI group's ``max_content_width`` (runvoy_cli.main): wider terminals get the same text."""


def console_main() -> None:
    if sys.argv[1:] in HELP_ARGS:
        path = help_cache_path()
        if path is not None:
            try:
                with open(path, encoding="utf-8") as cached:
                    text = cached.read()
            except OSError:
                text = None
            if text:
                _print_and_exit(text)
            text = render_help()
            _store(path, text)
            _print_and_exit(text)
    if _warm_command(sys.argv[1:]):
        from runvoy_cli.warm import client, common

        if common.enabled():
            status = client.run(sys.argv)
            if status is not None:
                os._exit(status)
    cold_main()


def cold_main() -> None:
    """The command, in this process (a warm child calls this too, once it has become the caller)."""
    _no_closed_streams()
    if may_run_locally(sys.argv[1:]):
        from runvoy_core.providers.local import standby

        standby.start_ahead()
    from runvoy_cli.main import console_main as full

    full()


def _no_closed_streams() -> None:
    """A standard stream the caller closed (``runvoy list >&-``) is None in Python: what would go there goes
    to /dev/null instead, as a daemon's output does, rather than failing the command with a traceback."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115 (lives as long as the process)


def _warm_command(args: list[str]) -> bool:
    index, _ = command_word(args)
    from runvoy_cli.warm.common import COMMANDS

    return index < len(args) and args[index] in COMMANDS


def command_word(args: list[str]) -> tuple[int, str]:
    """Where the subcommand is (the first word after the global options; ``len(args)`` when there is none)
    and the provider the global options or RUNVOY_PROVIDER name (``local`` when none does)."""
    provider = os.environ.get("RUNVOY_PROVIDER") or "local"
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            if arg in ("--provider", "-p") and index + 1 < len(args):
                provider = args[index + 1]
            index += 2
        elif arg.startswith("--provider="):
            provider = arg.partition("=")[2]
            index += 1
        elif arg.startswith("-") and arg != "-":
            index += 1
        else:
            return index, provider
    return len(args), provider


def may_run_locally(args: list[str]) -> bool:
    """Whether this command line may start a local run: ``run`` (after the global options), not a dry run or
    a help page, and no other provider named on the line or in RUNVOY_PROVIDER. The config file may still
    name another provider; then the supervisor started ahead just exits."""
    index, provider = command_word(args)
    if args[index : index + 1] != ["run"]:
        return False
    rest = args[index + 1 :]
    if {"--help", "-h", "--dry-run"} & set(rest):
        return False
    for position, item in enumerate(rest):  # run's own --provider
        if item in ("--provider", "-p") and position + 1 < len(rest):
            provider = rest[position + 1]
        elif item.startswith("--provider="):
            provider = item.partition("=")[2]
    return provider == "local"


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, as click asks it, without importing shutil."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def help_cache_path() -> str | None:
    """The cache file for this runvoy and this width, or None when there is no usable home."""
    width = min(terminal_columns(), MAX_CONTENT_WIDTH + 2)  # click: min(columns, max_width) - 2
    try:
        here = os.stat(os.path.join(os.path.dirname(__file__), "main.py"))
    except OSError:
        return None
    from runvoy_core import __version__

    home = os.environ.get("RUNVOY_HOME")
    if not home:
        from runvoy_core.paths import default_home

        home = str(default_home())
    # a changed main.py (an upgrade, an edit in a checkout) is a new key: a stale text is never shown
    key = f"{__version__}-{here.st_mtime_ns:x}-{here.st_size:x}-{width}"
    return os.path.join(os.path.expanduser(home), "cache", f"help-{key}.txt")


def render_help() -> str:
    """The top-level help exactly as ``runvoy --help`` prints it through click."""
    from runvoy_cli.main import cli

    with cli.make_context("runvoy", [], resilient_parsing=True) as ctx:
        return ctx.get_help() + "\n"


def _store(path: str, text: str) -> None:
    temporary = f"{path}.{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only home: render again next time


def _print_and_exit(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os._exit(141)
    os._exit(0)
