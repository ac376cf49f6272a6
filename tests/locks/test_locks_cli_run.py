"""Two `runvoy run --lock deploy` at once, through the real CLI in separate processes (local provider)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runvoy_core.testing.waiting import DEADLINE, wait_for, wait_for_file

ROOT = Path(__file__).resolve().parents[2]


def runvoy(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runvoy_cli.main", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_held(home: Path, name: str, timeout: float = DEADLINE) -> str:
    from runvoy_core.locks import LockManager
    from runvoy_core.providers.local.register import LocalLockRegister

    manager = LockManager(LocalLockRegister(home))

    def holder() -> str | None:
        found = manager.get(name)
        return str(found[0].holder.execution_id) if found and found[0].state.value == "held" else None

    return wait_for(holder, what=f"lock {name} to be taken", timeout=timeout)


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
        assert first.wait(timeout=DEADLINE) == 0
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
        assert first.wait(timeout=DEADLINE) == 0
        first_ended = time.monotonic()
        assert second.wait(timeout=60) == 0, "".join(err_lines)
        # well short of the 60 s lock timeout; the rest is room for a loaded machine
        assert time.monotonic() - first_ended < 30, "the waiter should run soon after the lock is released"
        reader.join(DEADLINE)
        assert order.read_text().splitlines() == ["first-start", "first-end", "second"]
    finally:
        gate.touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()


def _status(execution_id: str) -> dict[str, object]:
    import json

    done = runvoy("status", execution_id, "--json")
    out, err = done.communicate(timeout=DEADLINE)
    assert done.returncode == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def _group_gone(pid_file: Path) -> bool:
    pgid = int(pid_file.read_text())
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.timeout(90)
def test_cancel_stops_an_attached_holder_and_runs_after_it(runvoy_home: Path, tmp_path: Path) -> None:
    order = tmp_path / "order"
    first = runvoy(
        "run", "--lock", "deploy", f"echo first-start >> {order}; sleep 300; echo first-end >> {order}"
    )
    try:
        holder = wait_until_held(runvoy_home, "deploy")
        wait_for_file(order, containing="first-start")  # the lock is taken before the command runs
        second = runvoy("run", "--lock", "deploy", "--on-conflict", "cancel", f"echo second >> {order}")
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert f"stopping {holder}, which holds lock 'deploy' (--on-conflict cancel)" in err
        _out, first_err = first.communicate(timeout=DEADLINE)
        assert "CANCELLED" in first_err and "superseded: a newer run took lock 'deploy'" in first_err
        assert order.read_text().splitlines() == ["first-start", "second"]
        record = _status(holder)
        assert record["status"] == "CANCELLED" and "superseded" in str(record["reason"])
    finally:
        first.kill()
        first.communicate()


@pytest.mark.timeout(90)
def test_cancel_stops_a_detached_holder_and_its_processes(runvoy_home: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "pgid"
    started = runvoy("run", "--detach", "--lock", "nightly", f"echo $$ > {pid_file}; sleep 300 & wait")
    holder, _ = started.communicate(timeout=DEADLINE)
    holder = holder.strip()
    assert wait_until_held(runvoy_home, "nightly") == holder
    wait_for_file(pid_file, containing="\n")
    second = runvoy("run", "--lock", "nightly", "--on-conflict", "cancel", "echo second")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0 and out == "second\n", err
    record = _status(holder)
    assert record["status"] == "CANCELLED" and "superseded" in str(record["reason"])
    wait_for(lambda: _group_gone(pid_file), what="the holder's processes to end after the cancel")
    events = [e["event"] for e in record["events"]]  # type: ignore[union-attr]
    assert "stop:superseded" in events


@pytest.mark.timeout(120)
def test_cancel_gives_up_after_the_lock_timeout_when_the_holder_ignores_the_stop(
    runvoy_home: Path, tmp_path: Path
) -> None:
    # the holder traps SIGTERM and has a long grace period: the newcomer waits only --lock-timeout
    trapped = tmp_path / "trapped"
    started = runvoy(
        "run",
        "--detach",
        "--lock",
        "slow",
        "--stop-grace",
        "60s",
        f"trap '' TERM; touch {trapped}; sleep 300",
    )
    holder, _ = started.communicate(timeout=DEADLINE)
    wait_until_held(runvoy_home, "slow")
    wait_for_file(trapped)  # a stop sent before the trap was set would end it
    second = runvoy("run", "--lock", "slow", "--on-conflict", "cancel", "--lock-timeout", "2s", "true")
    _out, err = second.communicate(timeout=60)
    assert second.returncode == 75, err
    assert "gave up waiting for lock 'slow'" in err and "Traceback" not in err
    runvoy("kill", "--force", holder.strip()).communicate(timeout=DEADLINE)


@pytest.mark.timeout(240)
def test_lock_slots_let_at_most_n_runs_overlap(runvoy_home: Path, tmp_path: Path) -> None:
    """Six `runvoy run --lock etl --lock-slots 2 --on-conflict wait` at once: never more than two run
    together, two do run together, and each run knows its slot."""
    log = tmp_path / "log"
    # a run ends only once two have started, so two surely run together (however late the CLIs start)
    script = (
        f'echo "start $RUNVOY_LOCK $(date +%s.%N)" >> {log}; '
        f'while [ "$(grep -c start {log})" -lt 2 ]; do sleep 0.05; done; '
        f'echo "end $RUNVOY_LOCK $(date +%s.%N)" >> {log}'
    )
    runs = [
        runvoy("run", "--lock", "etl", "--lock-slots", "2", "--on-conflict", "wait", script) for _ in range(6)
    ]
    for run in runs:
        _out, err = run.communicate(timeout=200)
        assert run.returncode == 0, err
    events = []
    for line in log.read_text().splitlines():
        kind, slot, at = line.split()
        events.append((float(at), 0 if kind == "end" else 1, slot))
    running, peak, slots_in_use = 0, 0, set()
    for _at, starting, slot in sorted(events):
        if starting:
            assert slot not in slots_in_use, f"{slot} was held twice at once"
            slots_in_use.add(slot)
            running += 1
        else:
            slots_in_use.discard(slot)
            running -= 1
        peak = max(peak, running)
    assert peak == 2
    assert {slot for _at, _starting, slot in events} == {"etl#1", "etl#2"}
