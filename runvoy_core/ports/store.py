"""Store: execution records (create-if-absent, get, update-if-version, list newest first) and each
execution's append-only event history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from runvoy_core.models import Execution, Status, StatusChange
from runvoy_core.records import Record


class ExecutionQuery(Record, kw_only=True):
    statuses: frozenset[Status] | None = None
    since: datetime | None = None
    labels: dict[str, str] = {}
    limit: int = 50
    cursor: str | None = None


class ExecutionPage(Record, kw_only=True):
    executions: list[Execution]
    cursor: str | None = None


@runtime_checkable
class StorePort(Protocol):
    def create(self, execution: Execution) -> Execution:
        """Insert if absent (raise AlreadyExists otherwise). Returns the record as stored (version 1)."""

    def get(self, execution_id: str) -> Execution | None: ...

    def update(self, execution: Execution) -> Execution:
        """Write if the stored version equals ``execution.version`` (raise VersionConflict otherwise);
        returns the record with its new version."""

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        """Newest first, filtered; ``cursor`` continues a previous page."""

    def resolve_prefix(self, prefix: str, limit: int = 2) -> Sequence[str]:
        """Full ids starting with ``prefix`` (at most ``limit``)."""

    def append_event(self, execution_id: str, change: StatusChange) -> None: ...

    def events(self, execution_id: str) -> Sequence[StatusChange]: ...
