"""How a provider's view of a task becomes a runvoy status (one place, used by the runner and by every
reader that converges a record)."""

from __future__ import annotations

from runvoy_core.models import Execution, Status
from runvoy_core.ports.compute import TaskPhase, TaskState

# runvoy run exits like `timeout(1)` when the run hit its timeout, and like `docker run` when runvoy failed
EXIT_TIMED_OUT = 124
EXIT_RUNVOY_FAILED = 125


_ORDER = {Status.PENDING: 0, Status.STARTING: 1, Status.RUNNING: 2, Status.STOPPING: 3}


def moves_forward(current: Status, new: Status) -> bool:
    """Statuses only move forward: a late PENDING from a slow API never undoes RUNNING."""
    return _ORDER.get(new, 9) > _ORDER.get(current, 9) if current in _ORDER else False


def active_status(state: TaskState) -> Status:
    return {
        TaskPhase.PENDING: Status.PENDING,
        TaskPhase.STARTING: Status.STARTING,
        TaskPhase.RUNNING: Status.RUNNING,
        TaskPhase.STOPPING: Status.STOPPING,
    }.get(state.phase, Status.RUNNING)


def final_status(execution: Execution, state: TaskState) -> tuple[Status, str | None]:
    """The terminal status and a human reason for an ended task."""
    if state.phase == TaskPhase.UNKNOWN:
        return Status.LOST, state.reason or "the provider no longer knows this task"
    if state.failed_to_start:
        return Status.FAILED, state.reason or "the task failed to start"
    if execution.stop_requested == "start_timeout":
        return Status.FAILED, state.reason or "did not start in time (stuck before RUNNING); stopped"
    if execution.stop_requested == "lock_lost":
        because = execution.stop_detail or "its lease was lost"
        return Status.FAILED, f"stopped because it no longer held lock {execution.lock!r}: {because}"
    if execution.stop_requested == "timeout" or state.timed_out:
        timeout = execution.request.timeout
        return (
            Status.TIMED_OUT,
            f"exceeded its timeout of {timeout:g}s" if timeout else "exceeded its timeout",
        )
    if execution.stop_requested == "superseded":
        return (
            Status.CANCELLED,
            f"superseded: a newer run took lock {execution.lock!r} (--on-conflict cancel)",
        )
    if execution.stop_requested in ("cancel", "kill") or state.stopped_by_request:
        return Status.CANCELLED, state.reason or "stopped on request"
    if state.exit_code == 0:
        return Status.SUCCEEDED, None
    if state.exit_code is None:
        return Status.FAILED, state.reason or "the task ended without an exit code"
    return Status.FAILED, state.reason or f"exited with code {state.exit_code}"


def cli_exit_code(execution: Execution) -> int:
    if execution.status == Status.TIMED_OUT:
        return EXIT_TIMED_OUT
    if execution.status == Status.SUCCEEDED:
        return 0
    if execution.exit_code is not None and execution.status in (Status.FAILED, Status.CANCELLED):
        return execution.exit_code
    return EXIT_RUNVOY_FAILED
