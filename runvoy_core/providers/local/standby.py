"""A supervisor started ahead of its task, for ``runvoy run`` (decision 0213).

A local run waits for its supervisor — a second Python process — to start, import what it needs and run the
command: about a third of an attached ``runvoy run "true"``. None of that depends on the run, so the CLI
starts the supervisor first thing (``runvoy_cli.entry``, before importing click), on the other core while it
imports and checks the request itself. The supervisor waits, blocked on its stdin (a pipe from the CLI), for
its orders: the task id, once the task row exists (a supervisor still never runs before its row), and the
variables a supervisor gets in its environment (secret values among them: a pipe, never a file).

If the CLI needs none — a cloud run, a dry run, a refused request — the pipe closes when the CLI exits and the
supervisor exits at end of file. Everything here is the standard library's ``os`` and ``sys``: it runs before
anything else is imported.
"""

from __future__ import annotations

import os
import sys

BOOT_AHEAD = (
    "import sys; '' in sys.path and sys.path.remove(''); sys.path.append(sys.argv.pop(1)); "
    "from runvoy_core.providers.local.supervisor import ahead; import os; os._exit(ahead())"
)
"""``python -S -c BOOT_AHEAD <directory holding runvoy_core>`` (like supervisor.BOOT, without a task yet)."""

_ahead: tuple[int, int] | None = None
"""The supervisor started ahead in this process: (pid, write end of its stdin)."""


def packages_dir() -> str:
    """The directory that holds the runvoy_core package (what BOOT puts on the supervisor's sys.path)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def start_ahead() -> None:
    """Start a supervisor that waits for its orders; at most one per process. Never raises: without one,
    LocalCompute starts its supervisor as usual."""
    global _ahead
    if _ahead is not None:
        return
    try:
        read_end, write_end = os.pipe()  # both close-on-exec: only the dup2 onto 0 reaches the supervisor
        try:
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-S", "-c", BOOT_AHEAD, packages_dir()],
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, read_end, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                ],
                setsid=True,  # survives the CLI, and the CLI's Ctrl-C, as a supervisor started later does
            )
        finally:
            os.close(read_end)
    except (OSError, AttributeError, NotImplementedError):  # no posix_spawn here, no processes left...
        return
    _ahead = (pid, write_end)


def take() -> tuple[int, int] | None:
    """The supervisor started ahead, for LocalCompute.start to give its orders to (only once)."""
    global _ahead
    found, _ahead = _ahead, None
    return found


def give_orders(write_end: int, orders: bytes) -> bool:
    """Write the orders (one line) and close the pipe; False when the supervisor is gone."""
    try:
        view = memoryview(orders)
        while view:
            view = view[os.write(write_end, view) :]
        return True
    except OSError:
        return False
    finally:
        os.close(write_end)
