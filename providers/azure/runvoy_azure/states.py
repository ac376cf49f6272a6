"""How an ACI container group (as the SDK returns it) becomes a runvoy TaskState.

``instance_view`` is None until the group has been placed, and the container's ``current_state`` is None
until the image pull begins: both are normal and read as PENDING. A group ``Stopped`` by the stop API
ended on request; ``Succeeded``/``Failed`` are the ends of a ``restartPolicy: Never`` run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runvoy_azure.names import TAG_EXECUTION
from runvoy_core.ports import TaskPhase, TaskState

# detail_status values that only restate the exit code
_PLAIN_DETAILS = {"", "completed", "error", "terminated"}
_PULL_EVENTS = {"pulling"}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _container(group: Any, name: str) -> Any:
    for container in group.containers or []:
        if container.name == name:
            return container
    return (group.containers or [None])[0]


def _events(group: Any, container: Any) -> list[Any]:
    found: list[Any] = []
    if container is not None and container.instance_view is not None:
        found.extend(container.instance_view.events or [])
    if group.instance_view is not None:
        found.extend(group.instance_view.events or [])
    return found


def _pull_started(events: list[Any]) -> datetime | None:
    stamps = [_utc(e.first_timestamp) for e in events if (e.name or "").lower() in _PULL_EVENTS]
    known = [s for s in stamps if s is not None]
    return min(known) if known else None


def _warning(events: list[Any]) -> str | None:
    warnings = [e for e in events if (e.type or "").lower() == "warning" and e.message]
    if not warnings:
        return None
    latest = max(warnings, key=lambda e: _utc(e.last_timestamp) or datetime.min.replace(tzinfo=UTC))
    return str(latest.message)


def task_state(ref: str, group: Any, container_name: str) -> TaskState:
    tags = group.tags or {}
    group_state = (group.instance_view.state if group.instance_view is not None else None) or ""
    provisioning = (group.provisioning_state or "").lower()
    container = _container(group, container_name)
    view = container.instance_view if container is not None else None
    current: Any = view.current_state if view is not None else None
    events = _events(group, container)
    pull_started = _pull_started(events)
    detail: dict[str, Any] = {
        "group": group.name,
        "provisioning_state": group.provisioning_state,
        "group_state": group_state or None,
        "container_state": current.state if current is not None else None,
        "detail_status": current.detail_status if current is not None else None,
    }
    common: dict[str, Any] = {"ref": ref, "execution_id": tags.get(TAG_EXECUTION), "detail": detail}
    stopped_on_request = group_state.lower() == "stopped"
    state_name = (current.state or "").lower() if current is not None else ""

    if state_name == "terminated" and current is not None:
        started = _utc(current.start_time)
        finished = _utc(current.finish_time)
        detail_status = (current.detail_status or "").strip()
        reason = detail_status if detail_status.lower() not in _PLAIN_DETAILS else None
        return TaskState(
            phase=TaskPhase.STOPPED,
            exit_code=current.exit_code,
            reason=reason,
            stopped_by_request=stopped_on_request,
            started_at=started,
            stopped_at=finished,
            billed_start=pull_started or started,
            billed_stop=finished,
            **common,
        )
    if stopped_on_request:
        return TaskState(
            phase=TaskPhase.STOPPED,
            stopped_by_request=True,  # the runner knows why it stopped it (cancel, start timeout...)
            started_at=_utc(current.start_time) if current is not None else None,
            billed_start=pull_started,
            **common,
        )
    if provisioning == "failed" or group_state.lower() == "failed":
        why = _warning(events) or f"container group {group.name} failed to provision"
        return TaskState(
            phase=TaskPhase.STOPPED,
            failed_to_start=True,
            reason=why,
            billed_start=pull_started,
            **common,
        )
    if state_name == "running":
        return TaskState(phase=TaskPhase.RUNNING, started_at=_utc(current.start_time), **common)
    if state_name == "waiting" or pull_started is not None:
        waiting = (current.detail_status if current is not None else None) or _warning(events)
        return TaskState(phase=TaskPhase.STARTING, reason=waiting, **common)
    if group_state.lower() == "succeeded":
        return TaskState(
            phase=TaskPhase.STOPPED, reason="the group ended without a container state", **common
        )
    return TaskState(phase=TaskPhase.PENDING, reason=_warning(events), **common)
