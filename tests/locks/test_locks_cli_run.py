"""Two `runvoy run --lock deploy` at once, through the real CLI in separate processes (local provider)."""

from __future__ import annotations

import os
import subprocess
import sys
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


def wait_until_held(home: Path, name: str, timeout: float = 20) -> str:
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


@pytest.mark.timeout(90)
def test_second_run_fails_fast_naming_the_first(runvoy_home: Path, tmp_path: Path) -> None:
    first = runvoy("run", "--lock", "deploy", f"sleep 2; echo first >> {tmp_path / 'order'}")
    try:
        holder = wait_until_held(runvoy_home, "deploy")
        started = time.monotonic()
        second = runvoy("run", "--lock", "deploy", f"echo second >> {tmp_path / 'order'}")
        _out, err = second.communicate(timeout=30)
        assert second.returncode == 75, err
        assert time.monotonic() - started < 10
        assert f"lock 'deploy' is held by execution {holder}" in err
        assert "runvoy locks status deploy" in err and "Traceback" not in err
        assert first.wait(timeout=30) == 0
        assert (tmp_path / "order").read_text() == "first\n"
    finally:
        if first.poll() is None:
            first.kill()


@pytest.mark.timeout(90)
def test_waiting_run_starts_right_after_the_first_ends(runvoy_home: Path, tmp_path: Path) -> None:
    order = tmp_path / "order"
    first = runvoy(
        "run", "--lock", "deploy", f"echo first-start >> {order}; sleep 2; echo first-end >> {order}"
    )
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
        assert first.wait(timeout=30) == 0
        first_ended = time.monotonic()
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert time.monotonic() - first_ended < 8, "the waiter should run soon after the lock is released"
        assert "waiting for lock 'deploy'" in err
        assert order.read_text().splitlines() == ["first-start", "first-end", "second"]
    finally:
        if first.poll() is None:
            first.kill()
