"""DescribeTasks' view of a task -> runvoy's TaskState, with a human reason for every abnormal end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runvoy_core.ports import TaskPhase, TaskState

EXECUTION_TAG = "runvoy:execution-id"

_PHASES = {
    "PROVISIONING": TaskPhase.PENDING,
    "PENDING": TaskPhase.PENDING,
    "ACTIVATING": TaskPhase.STARTING,
    "RUNNING": TaskPhase.RUNNING,
    "DEACTIVATING": TaskPhase.STOPPING,
    "STOPPING": TaskPhase.STOPPING,
    "DEPROVISIONING": TaskPhase.STOPPING,
    "STOPPED": TaskPhase.STOPPED,
    "DELETED": TaskPhase.STOPPED,
}
_PLATFORM_STOPS = {
    "SpotInterruption": "Fargate Spot interruption: AWS reclaimed the capacity",
    "TerminationNotice": "the task was terminated by AWS (termination notice)",
    "InfrastructureHealth": "the task was stopped by AWS because of an infrastructure health issue",
    "ServiceSchedulerInitiated": "the task was stopped by the ECS service scheduler",
}


def utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def execution_id_of(task: dict[str, Any]) -> str | None:
    for tag in task.get("tags") or []:
        if tag.get("key") == EXECUTION_TAG:
            return str(tag.get("value"))
    # StopTask deletes tags; startedBy (set to the execution id) survives
    started_by = task.get("startedBy")
    return str(started_by) if started_by else None


def _container(task: dict[str, Any], name: str) -> dict[str, Any] | None:
    containers = task.get("containers") or []
    for container in containers:
        if container.get("name") == name:
            return dict(container)
    return dict(containers[0]) if containers else None


def task_state(task: dict[str, Any], container_name: str) -> TaskState:
    last = str(task.get("lastStatus") or "PROVISIONING")
    desired = str(task.get("desiredStatus") or "RUNNING")
    phase = _PHASES.get(last, TaskPhase.PENDING)
    if phase in (TaskPhase.PENDING, TaskPhase.STARTING, TaskPhase.RUNNING) and desired == "STOPPED":
        phase = TaskPhase.STOPPING
    if phase is TaskPhase.RUNNING and task.get("startedAt") is None and task.get("pullStartedAt") is not None:
        phase = TaskPhase.STARTING
    stop_code = task.get("stopCode")
    stopped_reason = task.get("stoppedReason") or ""
    container = _container(task, container_name) or {}
    state = TaskState(
        ref=str(task["taskArn"]),
        execution_id=execution_id_of(task),
        phase=phase,
        started_at=utc(task.get("startedAt")),
        stopped_at=utc(task.get("stoppedAt")) or utc(task.get("executionStoppedAt")),
        billed_start=utc(task.get("pullStartedAt")),
        detail={
            "task_arn": task.get("taskArn"),
            "cluster": task.get("clusterArn"),
            "task_definition": task.get("taskDefinitionArn"),
            "last_status": last,
            "desired_status": desired,
            "stop_code": stop_code,
            "stopped_reason": stopped_reason or None,
            "capacity_provider": task.get("capacityProviderName") or task.get("launchType"),
            "container_reason": container.get("reason"),
        },
    )
    if phase is not TaskPhase.STOPPED:
        return state
    state.billed_stop = state.stopped_at if state.billed_start else None
    _explain_stop(state, stop_code, stopped_reason, container)
    return state


def _explain_stop(state: TaskState, stop_code: Any, stopped_reason: str, container: dict[str, Any]) -> None:
    raw_exit = container.get("exitCode")
    exit_code = int(raw_exit) if raw_exit is not None else None
    container_reason = str(container.get("reason") or "")
    state.exit_code = exit_code
    if exit_code is not None and exit_code > 128:
        state.signal = exit_code - 128
    if stop_code == "TaskFailedToStart" or (not container and state.started_at is None and exit_code is None):
        state.failed_to_start = True
        state.exit_code = None
        state.reason = f"the task failed to start: {stopped_reason or container_reason or 'no reason given'}"
        return
    if stop_code == "UserInitiated":
        state.stopped_by_request = True
        state.reason = "stopped by request" + (f" ({stopped_reason})" if stopped_reason else "")
        return
    if stop_code in _PLATFORM_STOPS:
        state.reason = _PLATFORM_STOPS[stop_code] + (f": {stopped_reason}" if stopped_reason else "")
        if exit_code == 0:
            # an interrupted run did not finish its work even if the command exited cleanly on SIGTERM
            state.exit_code = None
        return
    if "OutOfMemory" in container_reason:
        state.reason = f"out of memory: the container was killed (exit {exit_code}; {container_reason})"
    elif exit_code == 137:
        state.reason = "killed with SIGKILL (exit 137): on Fargate this is usually out of memory"
    elif exit_code is None:
        state.reason = "the platform killed the container (ECS reported no exit code)" + (
            f": {container_reason or stopped_reason}" if (container_reason or stopped_reason) else ""
        )
    elif exit_code != 0:
        state.reason = f"exited with code {exit_code}"
