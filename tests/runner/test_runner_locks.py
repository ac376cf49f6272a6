"""Locks through the runner on the local provider: held while running, released however the run ends,
detached runs keep theirs, and a run that loses its lock is stopped and says why."""

from __future__ import annotations

import threading
from pathlib import Path

from runvoy_core.api import Runvoy
from runvoy_core.config import load_settings
from runvoy_core.errors import LockHeld
from runvoy_core.locks import LockManager
from runvoy_core.models import LockHolder, LockState, Status
from runvoy_core.testing.waiting import DEADLINE, gate, wait_for


def _state(rv: Runvoy, name: str) -> LockState | None:
    found = LockManager(rv.register).get(name)
    return found[0].state if found else None


def test_lock_is_held_during_the_run_and_released_after(runvoy_home: object) -> None:
    rv = Runvoy()
    seen: list[str] = []
    ex = rv.run('echo "$RUNVOY_LOCK:$RUNVOY_FENCE"', lock="nightly", log_sink=_Lines(seen))
    assert ex.status == Status.SUCCEEDED and ex.lock == "nightly" and ex.fence == 1
    assert seen == ["nightly:1"]
    assert _state(rv, "nightly") == LockState.RELEASED
    again = rv.run("true", lock="nightly")
    assert again.fence == 2, "every grant gets a strictly higher fence"


def test_failed_and_timed_out_runs_release_their_lock() -> None:
    rv = Runvoy()
    assert rv.run("exit 2", lock="l1").status == Status.FAILED
    assert _state(rv, "l1") == LockState.RELEASED
    assert rv.run("sleep 300", lock="l2", timeout="1s", stop_grace="1s").status == Status.TIMED_OUT
    assert _state(rv, "l2") == LockState.RELEASED


def test_detached_run_keeps_its_lock_until_an_observer_sees_it_end(tmp_path: Path) -> None:
    rv = Runvoy()
    release = tmp_path / "release"
    ex = rv.submit(gate(release), lock="deploy")
    try:
        Runvoy().submit("true", lock="deploy")
        raise AssertionError("the second run must not start while the first holds the lock")
    except LockHeld as exc:
        assert ex.id in exc.message
    finally:
        release.touch()
    final = rv.wait(ex.id, timeout=DEADLINE)
    assert final.status == Status.SUCCEEDED
    assert _state(rv, "deploy") == LockState.RELEASED


def test_a_run_that_loses_its_lock_is_stopped_and_says_why() -> None:
    rv = Runvoy(settings=load_settings(lock_lease="3s"))
    result: dict[str, object] = {}
    watcher = threading.Thread(
        target=lambda: result.setdefault("ex", rv.run("sleep 300", lock="job", stop_grace="1s")), daemon=True
    )
    watcher.start()
    manager = LockManager(rv.register, lease=3)

    def held_by_a_running_run() -> object:
        found = manager.get("job")
        holder = found[0].holder.execution_id if found and found[0].state == LockState.HELD else None
        record = rv.store.get(holder) if holder else None
        return found if record is not None and record.status == Status.RUNNING else None

    # steal it once the run is really running under it
    record, version = wait_for(held_by_a_running_run, what="the run to hold the lock")  # type: ignore[misc]
    assert manager.force_release("job", version, by="test")
    intruder = manager.acquire("job", LockHolder(user="intruder"))
    assert intruder.fence == record.fence + 1
    watcher.join(DEADLINE)
    ex = result["ex"]
    assert ex.status == Status.FAILED  # type: ignore[attr-defined]
    assert "no longer held lock 'job'" in (ex.reason or "")  # type: ignore[attr-defined]
    events = [e.event for e in rv.events(ex.id)]  # type: ignore[attr-defined]
    assert "stop:lock_lost" in events
    assert manager.get("job")[0].holder.user == "intruder"  # type: ignore[index]


class _Lines:
    def __init__(self, out: list[str]) -> None:
        self.out = out

    def write_events(self, events: list) -> None:  # type: ignore[type-arg]
        self.out.extend(e.message for e in events)


def test_a_lock_taken_over_before_the_start_starts_nothing() -> None:
    from runvoy_core.errors import LockLost
    from runvoy_core.runner import Runner

    rv = Runvoy()
    runner = rv.runner
    manager = LockManager(rv.register)
    real_start = Runner._start_task

    def steal_then_start(self: Runner, handle: object) -> None:
        _record, version = manager.get("deploy")  # type: ignore[misc]
        manager.force_release("deploy", version, by="test")
        manager.acquire("deploy", LockHolder(user="intruder"))
        real_start(self, handle)  # type: ignore[arg-type]

    runner._start_task = steal_then_start.__get__(runner)  # type: ignore[method-assign]
    try:
        rv.run("echo must-not-run", lock="deploy")
        raise AssertionError("expected LockLost")
    except LockLost as exc:
        assert "nothing was started" in exc.message
    record = rv.list(limit=1)[0]
    assert record.status == Status.FAILED and record.task_ref is None
