"""Compute: start a task, describe it, stop it, find it again by execution id."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import msgspec

from runvoy_core.models import ExecutionRequest, Resources
from runvoy_core.records import Record


class TaskPhase(enum.StrEnum):
    PENDING = "PENDING"  # accepted, not yet placed / pulling
    STARTING = "STARTING"  # placed, pulling the image, booting
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"  # ended: see exit_code / signal / reason
    UNKNOWN = "UNKNOWN"  # the provider no longer knows the task (deleted, expired, supervisor gone)


class TaskSpec(Record, kw_only=True):
    """What the core asks a provider to run. ``env`` holds only plain values; ``secrets`` only names, which
    the provider resolves through its secret store at start (never into a record)."""

    execution_id: str
    request_id: str | None = None
    argv: list[str]
    image: str | None = None
    env: dict[str, str] = {}
    secrets: list[str] = []
    resources: Resources = msgspec.field(default_factory=Resources)
    region: str | None = None
    timeout: float | None = None
    stop_grace: float = 10.0
    workdir: str | None = None
    labels: dict[str, str] = {}

    @classmethod
    def from_request(
        cls, execution_id: str, request: ExecutionRequest, *, env: dict[str, str], request_id: str | None
    ) -> TaskSpec:
        return cls(
            execution_id=execution_id,
            request_id=request_id,
            argv=request.argv_for_shell(),
            image=request.pinned_image(),  # the digest the image check resolved, when it ran (decision 0804)
            env={**request.env, **env},
            secrets=list(request.secrets),
            resources=request.resources,
            region=request.region,
            timeout=request.timeout,
            stop_grace=request.stop_grace,
            workdir=request.workdir,
            labels=dict(request.labels),
        )


class TaskState(Record, kw_only=True):
    """What a provider knows about a task. Times are UTC."""

    ref: str
    execution_id: str | None = None
    store_id: str | None = None
    """The id of the store whose run this task is (read back from the task's tag); None: untagged (started
    before tasks carried it, or by a provider that does not tag). Reconcile touches only its own store's."""
    phase: TaskPhase
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    """A human reason when the task did not simply exit (OOM, spot interruption, failed to start...)."""
    failed_to_start: bool = False
    timed_out: bool = False
    """The provider itself enforced the timeout (native timeouts, the local supervisor)."""
    stopped_by_request: bool = False
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    billed_start: datetime | None = None
    billed_stop: datetime | None = None
    detail: dict[str, Any] = {}

    @property
    def ended(self) -> bool:
        return self.phase in (TaskPhase.STOPPED, TaskPhase.UNKNOWN)


def make_store_id(*parts: str) -> str:
    """A short, stable id of a store, derived from what locates it (provider, account/region, table or
    bucket), valid as an ECS tag, a Cloud Run label and an ACI tag value (decision 0016)."""
    import hashlib  # here, not at import: every command imports this module, few make a store id

    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


@runtime_checkable
class StoreScoped(Protocol):
    """A compute that tags every task it starts with the id of the store its records are kept in, and reads
    that tag back into ``TaskState.store_id`` (decision 0016)."""

    @property
    def store_id(self) -> str: ...


@runtime_checkable
class LeftoverSweeping(Protocol):
    """A compute whose ended tasks hold something until ``cleanup`` (an ACI group): ``leftovers`` lists the
    ended ones nobody cleaned up (their watcher died), without changing anything; reconcile cleans up those
    of its own store."""

    def leftovers(self) -> list[TaskState]: ...


@runtime_checkable
class ComputePort(Protocol):
    def validate(self, request: ExecutionRequest) -> None:
        """Raise a UsageError (naming the field and the valid values) for a request this provider cannot run.
        Must make no network call."""

    def start(self, spec: TaskSpec, idempotency_key: str) -> str:
        """Start the task and return its ref. Calling it again with the same key must return the same task,
        never start a second one (the key is the execution id)."""

    def describe(self, ref: str) -> TaskState: ...

    def stop(self, ref: str, grace: float, *, force: bool = False) -> None:
        """Graceful stop (SIGTERM), then kill after ``grace`` seconds; ``force`` kills at once. Idempotent."""

    def find(self, execution_id: str) -> str | None:
        """The ref of the task started for this execution, if any (used after an ambiguous start)."""

    def list_active(self) -> list[TaskState]:
        """Tasks started by runvoy that have not ended (for reconcile)."""

    def cleanup(self, ref: str) -> None:
        """Release what an ended task still holds (e.g. delete an ACI group) after its logs are final."""
