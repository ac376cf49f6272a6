"""The process rule through the CLI: nothing a local run started outlives it, whether it ends by itself,
by `runvoy kill`, by `runvoy kill --force` or by `--timeout` (decision 0207)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from runvoy_cli.main import cli
from runvoy_core.providers.local import procinfo

WAIT = 30.0
# a grandchild that leaves the run's process group and session (setsid), and a double-forked one that is
# re-parented away from the command at once; each writes its pid (atomically) before it sleeps
DETACHED = (
    'setsid sh -c \'echo $$ > "$0.tmp" && mv "$0.tmp" "$0"; exec sleep 300\' {one} & '
    '( sh -c \'echo $$ > "$0.tmp" && mv "$0.tmp" "$0"; exec sleep 300\' {two} & ) ; '
    "while [ ! -s {one} ] || [ ! -s {two} ]; do sleep 0.01; done; echo ready; "
)


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def invoke(*args: str) -> Outcome:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True, prog_name="runvoy")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def poll(probe: object, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not probe():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def identity(path: Path) -> tuple[int, int | None]:
    pid = int(path.read_text())
    return pid, procinfo.start_time(pid)


@pytest.fixture
def pidfiles(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    one, two = tmp_path / "setsid.pid", tmp_path / "double-fork.pid"
    yield one, two
    for path in (one, two):  # never leave one behind, even when the test failed
        if path.exists() and procinfo.is_alive(*identity(path)):
            os.kill(int(path.read_text()), signal.SIGKILL)


def command(pidfiles: tuple[Path, Path], then: str) -> str:
    one, two = pidfiles
    return DETACHED.format(one=one, two=two) + then


def assert_all_gone(pidfiles: tuple[Path, Path], after: str) -> None:
    for path in pidfiles:
        pid, started = identity(path)
        poll(
            lambda pid=pid, started=started: not procinfo.is_alive(pid, started),
            f"pid {pid} ({path.name}) to end after {after}",
        )


def test_a_normal_end_ends_every_descendant(runvoy_home: Path, pidfiles: tuple[Path, Path]) -> None:
    result = invoke("run", "--stop-grace", "1s", command(pidfiles, "exit 0"))
    assert result.code == 0, result.err
    assert result.out == "ready\n"
    assert_all_gone(pidfiles, "the run's normal end")


def test_a_normal_end_kills_a_descendant_that_ignores_sigterm_after_the_grace(
    runvoy_home: Path, tmp_path: Path
) -> None:
    pidfile = tmp_path / "stubborn.pid"
    result = invoke(
        "run",
        "--stop-grace",
        "1s",
        f"setsid sh -c 'trap \"\" TERM; echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; exec sleep 300' & "
        f"while [ ! -s {pidfile} ]; do sleep 0.01; done; exit 4",
    )
    try:
        assert result.code == 4, result.err  # the end and the exit code are the main command's
        pid, started = identity(pidfile)
        poll(lambda: not procinfo.is_alive(pid, started), "the SIGTERM-proof descendant to be killed")
    finally:
        if pidfile.exists() and procinfo.is_alive(*identity(pidfile)):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


@pytest.mark.parametrize("force", [False, True], ids=["kill", "kill-force"])
def test_kill_ends_every_descendant(runvoy_home: Path, pidfiles: tuple[Path, Path], force: bool) -> None:
    detached = invoke("run", "--detach", "--stop-grace", "1s", command(pidfiles, "sleep 300"))
    assert detached.code == 0, detached.err
    execution_id = detached.out.strip()
    poll(lambda: all(p.exists() for p in pidfiles), "the descendants' pid files")
    killed = invoke("kill", *(["--force"] if force else []), execution_id)
    assert killed.code == 0, killed.err
    assert_all_gone(pidfiles, "runvoy kill" + (" --force" if force else ""))


def test_a_timeout_ends_every_descendant(runvoy_home: Path, pidfiles: tuple[Path, Path]) -> None:
    # long enough for the descendants to start on a loaded machine: a timeout before them proves nothing
    result = invoke("run", "--timeout", "5s", "--stop-grace", "1s", command(pidfiles, "sleep 300"))
    assert result.code == 124, result.err
    assert all(p.exists() for p in pidfiles), "the timeout fired before the descendants started"
    assert_all_gone(pidfiles, "the timeout")


def test_kill_force_kills_a_detached_sigterm_proof_descendant_at_once(
    runvoy_home: Path, tmp_path: Path
) -> None:
    """Its output on /dev/null, it does not hold the run's pipes open: the run's end is seen at once, and
    the forced stop's "no grace" must still reach it (not the run's 300 s stop grace)."""
    pidfile = tmp_path / "quiet.pid"
    detached = invoke(
        "run",
        "--detach",
        "--stop-grace",
        "300s",
        f'setsid sh -c \'trap "" TERM; echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; '
        "exec sleep 300' >/dev/null 2>&1 & sleep 300",
    )
    assert detached.code == 0, detached.err
    try:
        poll(pidfile.exists, "the descendant's pid file")
        pid, started = identity(pidfile)
        killed = invoke("kill", "--force", detached.out.strip())
        assert killed.code == 0, killed.err
        poll(lambda: not procinfo.is_alive(pid, started), "the descendant to be killed", timeout=WAIT)
    finally:
        if pidfile.exists() and procinfo.is_alive(*identity(pidfile)):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
