"""Runs are never lost while their compute keeps running, and warnings say what happened (issue 12):
a detached holder whose lock was released is stopped by whoever looks at it; a lock held by a run that was
never recorded is taken over quickly and safely; a task the provider forgets is found and stopped before
its run is LOST; a lock an observer released after the run ended is not counted as lost."""

from __future__ import annotations

import os
import signal

import pytest
from structlog.testing import capture_logs

from runvoy_core.api import Runvoy
from runvoy_core.errors import LockLost
from runvoy_core.locks import LockManager
from runvoy_core.models import Execution, ExecutionRequest, LockHolder, LockState, OnConflict, Status
from runvoy_core.providers.local import procinfo
from runvoy_core.testing.memory_register import MemoryLockRegister
from runvoy_core.testing.waiting import wait_for, wait_for_status


def _running(rv: Runvoy, execution_id: str) -> Execution:
    return wait_for_status(rv, execution_id, Status.RUNNING)


# -- a detached holder whose lock is no longer its own -----------------------------------------------------
def test_a_detached_holder_whose_lock_was_released_by_force_is_stopped_by_the_next_observer() -> None:
    rv = Runvoy()
    ex = rv.submit("echo started; sleep 300", lock="deploy", stop_grace="1s")
    _running(rv, ex.id)
    manager = LockManager(rv.register)
    _record, version = manager.get("deploy")  # type: ignore[misc]
    assert manager.force_release("deploy", version, by="admin")
    seen = rv.status(ex.id)
    assert seen.stop_requested == "lock_lost"
    final = rv.wait(ex.id, timeout=60)
    assert final.status == Status.FAILED
    assert "no longer held lock 'deploy'" in (final.reason or "")
    assert "released by admin" in (final.reason or "")


def test_a_detached_holder_is_stopped_when_the_next_holder_took_its_lock() -> None:
    rv = Runvoy()
    ex = rv.submit("echo started; sleep 300", lock="etl", stop_grace="1s")
    _running(rv, ex.id)
    manager = LockManager(rv.register)
    _record, version = manager.get("etl")  # type: ignore[misc]
    assert manager.force_release("etl", version, by="admin")
    newer = manager.acquire("etl", LockHolder(user="next"))
    final = rv.wait(ex.id, timeout=60)
    assert final.status == Status.FAILED
    assert f"granted to another run (fence {newer.fence}" in (final.reason or "")
    events = [e.event for e in rv.events(ex.id)]
    assert "stop:lock_lost" in events


# -- a lock held by a run that was never recorded ------------------------------------------------------------
def _ghost_lock(rv: Runvoy, name: str, execution_id: str) -> None:
    """What a CLI killed between the lock grant and the record's creation leaves behind."""
    ghost = LockHolder(execution_id=execution_id, provider="local", command="echo ghost")
    LockManager(rv.register, lease=30).acquire(name, ghost)


def test_a_lock_whose_holder_was_never_recorded_is_taken_over_without_waiting_out_the_lease() -> None:
    rv = Runvoy()
    _ghost_lock(rv, "nightly", "9h05t0000001")
    rv.runner.absent_holder_grace = 0.5
    # the lease is 30 s: waiting it out would exceed the lock timeout
    ex = rv.run("echo mine", lock="nightly", on_conflict="wait", lock_timeout="20s")
    assert ex.status == Status.SUCCEEDED
    ghost = rv.get("9h05t0000001")
    assert ghost.status == Status.LOST and "never recorded" in (ghost.reason or "")


def test_a_submitter_that_records_after_its_run_was_declared_lost_starts_nothing() -> None:
    rv = Runvoy()
    taken = "1a7e00000001"
    rv.store.create(
        Execution(id=taken, provider="local", request=ExecutionRequest(command="true"), status=Status.LOST)
    )
    with pytest.raises(LockLost, match="nothing was started"):
        rv.runner.start(ExecutionRequest(command="echo late", lock="late"), execution_id=taken)
    found = LockManager(rv.register).get("late")
    assert found is not None and found[0].state == LockState.RELEASED


# -- a task the provider no longer knows --------------------------------------------------------------------
def test_a_run_whose_supervisor_died_is_found_and_stopped_before_it_is_lost() -> None:
    rv = Runvoy()
    ex = rv.submit("echo started; sleep 300")
    running = _running(rv, ex.id)
    state = rv.provider.compute.describe(running.task_ref)  # type: ignore[arg-type]
    supervisor, command = state.detail["supervisor_pid"], state.detail["pid"]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not procinfo.is_alive(supervisor, None), what="the supervisor to be gone")
    noted = rv.status(ex.id)
    assert not noted.status.is_terminal and noted.unknown_since is not None  # first: only noted
    rv.runner.unknown_grace = 0.0
    lost = rv.status(ex.id)
    assert lost.status == Status.LOST
    assert "was found and stopped" in (lost.reason or "")
    assert "left running" not in (lost.reason or "")
    wait_for(lambda: not procinfo.is_alive(command, None), what="the command to be gone")


# -- warnings mean something ---------------------------------------------------------------------------------
def test_a_lock_an_observer_released_after_the_run_ended_is_not_lost() -> None:
    register = MemoryLockRegister()
    holder = LockHolder(execution_id="0b5e00000001")
    manager = LockManager(register, lease=30, holder_status=lambda h: "ended")
    lease = manager.acquire("job", holder)
    with capture_logs() as logs:
        assert manager.release_if_holder_ended("job")
        assert lease.renew() is False  # the hold is over...
        assert lease.handed_over and not lease.lost  # ...and nothing was lost
        assert lease.release() is False  # not ours to release any more
    assert manager.metrics.lost.value(lock="job") == 0
    assert not [entry for entry in logs if entry["event"] == "lock.lost"]


def test_a_lock_taken_over_by_a_waiter_after_the_holder_ended_is_not_lost() -> None:
    register = MemoryLockRegister()
    ended = {"yes": False}
    manager = LockManager(register, lease=30, holder_status=lambda h: "ended" if ended["yes"] else "running")
    lease = manager.acquire("job", LockHolder(execution_id="0b5e00000002"))
    ended["yes"] = True
    waiter = LockManager(register, lease=30, holder_status=lambda h: "ended")
    newer = waiter.acquire("job", LockHolder(execution_id="0b5e00000003"), mode=OnConflict.WAIT, timeout=30)
    with capture_logs() as logs:
        assert lease.release() is False  # someone else holds it now; but it was handed over, not lost
    assert newer.fence == lease.fence + 1 and not lease.lost
    assert manager.metrics.lost.value(lock="job") == 0
    assert not [entry for entry in logs if entry["event"] == "lock.lost"]
