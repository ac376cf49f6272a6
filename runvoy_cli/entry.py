"""The ``runvoy`` console script. ``runvoy --help`` is answered from a cache without importing click.

``runvoy --help`` has a 50 ms budget (issue 14) and importing click alone takes most of it on a small machine.
The top-level help changes only when runvoy changes and depends only on the terminal's width, so the text
click renders is kept in ``<RUNVOY_HOME>/cache`` under a key made of both, and printed from there afterwards
(decision 1412). Everything else goes to ``runvoy_cli.main``.
"""

import os
import sys

HELP_ARGS = (["--help"], ["-h"])
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
    from runvoy_cli.main import console_main as full

    full()


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
