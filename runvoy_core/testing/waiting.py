"""Explicit handshakes for tests: wait for a state, a file or a log line, never for a duration.

A loaded 2-core machine can stall any process for seconds, so a test that sleeps "long enough" for something to
happen, or runs a command that must "still be running" after N seconds, fails at random. Wait for the thing
itself instead, with a generous deadline that only bounds a genuine hang (it costs nothing when all goes well:
the wait returns as soon as the condition holds). Commands a test must control wait on a gate file the test
creates (see ``gate``), rather than sleeping a guessed duration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from runvoy_core.api import Runvoy
    from runvoy_core.models import Execution, Status

T = TypeVar("T")

DEADLINE = 60.0
"""Seconds before a wait gives up: long enough for a loaded machine, short of pytest-timeout's 300."""


def wait_for(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float = DEADLINE,
    interval: float = 0.05,
) -> T:
    """Call ``probe`` until it returns a truthy value and return that value; fail the test with ``what`` and
    the last value seen once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:  # a false value (None, False, empty) means "not yet"
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {result!r}")
        time.sleep(interval)


def wait_for_file(path: Path | str, *, timeout: float = DEADLINE, containing: str | None = None) -> str:
    """Wait until ``path`` exists (and, if given, contains ``containing``); return its text."""
    target = Path(path)

    def probe() -> tuple[str] | None:
        try:
            text = target.read_text(errors="replace")
        except FileNotFoundError:
            return None
        if containing is not None and containing not in text:
            return None
        return (text,)  # truthy even when the file is empty

    what = f"{target} to exist" if containing is None else f"{target} to contain {containing!r}"
    return wait_for(probe, what=what, timeout=timeout)[0]


def gate(path: Path | str) -> str:
    """A shell snippet that blocks until the test creates ``path`` (``Path(path).touch()``): a command that must
    hold something (a lock, a running state) until the test has checked it waits on this, not on ``sleep N``."""
    return f"while [ ! -e '{path}' ]; do sleep 0.05; done"


def wait_for_status(rv: Runvoy, execution_id: str, *statuses: Status, timeout: float = DEADLINE) -> Execution:
    """Wait until the execution's record (converged with its provider) is in one of ``statuses``."""
    wanted = set(statuses)
    last: list[Execution] = []

    def probe() -> Execution | None:
        record = rv.status(execution_id)
        last[:] = [record]
        return record if record.status in wanted else None

    try:
        return wait_for(
            probe, what=f"execution {execution_id} to be {'/'.join(sorted(wanted))}", timeout=timeout
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its status: {last[0].status if last else None}") from None


def wait_for_output(rv: Runvoy, execution_id: str, text: str, *, timeout: float = DEADLINE) -> list[str]:
    """Wait until a line of the execution's output contains ``text`` (the command has reached that point);
    return the lines read so far."""

    def probe() -> list[str] | None:
        lines = [event.message for event in rv.logs(execution_id)]
        return lines if any(text in line for line in lines) else None

    return wait_for(probe, what=f"{text!r} in the output of {execution_id}", timeout=timeout)
