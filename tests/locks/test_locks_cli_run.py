"""Two `runvoy run --lock deploy` at once, through the real CLI in separate processes (local provider)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def runvoy(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runvoy_cli.main", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_held(home: Path, name: str, timeout: float = 30) -> str:
    from runvoy_core.locks import LockManager
    from runvoy_core.providers.local.register import LocalLockRegister

    manager = LockManager(LocalLockRegister(home))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = manager.get(name)
        if found and found[0].state.value == "held":
            return str(found[0].holder.execution_id)
        time.sleep(0.05)
    raise AssertionError(f"lock {name} was never taken")


def blocked_until(gate: Path, before: str, after: str, order: Path) -> str:
    """A shell command that logs, waits for the test to open ``gate``, and logs again."""
    return f"echo {before} >> {order}; while [ ! -e {gate} ]; do sleep 0.05; done; echo {after} >> {order}"


@pytest.mark.timeout(90)
def test_second_run_fails_fast_naming_the_first(runvoy_home: Path, tmp_path: Path) -> None:
    order, gate = tmp_path / "order", tmp_path / "gate"
    first = runvoy("run", "--lock", "deploy", blocked_until(gate, "first-start", "first-end", order))
    try:
        holder = wait_until_held(runvoy_home, "deploy")
        second = runvoy("run", "--lock", "deploy", f"echo second >> {order}")
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 75, err
        assert f"lock 'deploy' is held by execution {holder}" in err
        assert "runvoy locks status deploy" in err and "Traceback" not in err
        gate.touch()
        assert first.wait(timeout=30) == 0
        assert order.read_text().splitlines() == ["first-start", "first-end"]
    finally:
        gate.touch()
        if first.poll() is None:
            first.kill()


@pytest.mark.timeout(90)
def test_waiting_run_starts_right_after_the_first_ends(runvoy_home: Path, tmp_path: Path) -> None:
    order, gate = tmp_path / "order", tmp_path / "gate"
    first = runvoy("run", "--lock", "deploy", blocked_until(gate, "first-start", "first-end", order))
    second: subprocess.Popen[str] | None = None
    try:
        wait_until_held(runvoy_home, "deploy")
        second = runvoy(
            "run",
            "--lock",
            "deploy",
            "--on-conflict",
            "wait",
            "--lock-timeout",
            "60s",
            f"echo second >> {order}",
        )
        waiting = threading.Event()
        err_lines: list[str] = []

        def read_stderr() -> None:
            assert second is not None and second.stderr is not None
            for line in second.stderr:
                err_lines.append(line)
                if "waiting for lock 'deploy'" in line:
                    waiting.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        assert waiting.wait(60), "".join(err_lines)
        gate.touch()
        assert first.wait(timeout=30) == 0
        first_ended = time.monotonic()
        assert second.wait(timeout=60) == 0, "".join(err_lines)
        assert time.monotonic() - first_ended < 8, "the waiter should run soon after the lock is released"
        reader.join(10)
        assert order.read_text().splitlines() == ["first-start", "first-end", "second"]
    finally:
        gate.touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
