"""Execution records and their event history as GCS objects.

    <prefix>executions/<id>.json          the record (create-only, then generation-matched writes)
    <prefix>index/<inverted ms>-<id>      empty; lexicographic order = newest first, so a page of ``list``
                                          reads one listing page plus the records it shows
    <prefix>events/<id>/<ns>-<rand>.json  one object per status change (create-only, append-only)

``Execution.version`` stays the port's counter (1 on create, +1 per update); the compare-and-swap itself is
on the object's generation: the record is read, its version compared, and written with
``if_generation_match`` of the generation just read (or remembered from this process's last write).
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.models import Execution, StatusChange
from runvoy_core.ports import ExecutionPage, ExecutionQuery
from runvoy_gcp.objects import ObjectStore

_INVERT_MS = 10**13  # later than year 2286: every inverted stamp has 13 digits


def index_stamp(when: datetime) -> str:
    ms = int(when.astimezone(UTC).timestamp() * 1000)
    return f"{_INVERT_MS - ms:013d}"


def stamp_time(stamp: str) -> datetime:
    return datetime.fromtimestamp((_INVERT_MS - int(stamp)) / 1000, UTC)


class GcsExecutionStore:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self._generations: dict[tuple[str, int], int] = {}

    @staticmethod
    def _record_name(execution_id: str) -> str:
        return f"executions/{execution_id}.json"

    @staticmethod
    def _index_name(execution: Execution) -> str:
        return f"index/{index_stamp(execution.created_at)}-{execution.id}"

    def create(self, execution: Execution) -> Execution:
        stored = execution.model_copy(update={"version": 1})
        generation = self.objects.create(self._record_name(stored.id), stored.model_dump_json().encode())
        if generation is None:
            raise AlreadyExists(f"execution {stored.id} already exists", hint="use a new execution id")
        self._generations[(stored.id, 1)] = generation
        self.objects.create(self._index_name(stored), b"")
        return stored

    def _read(self, execution_id: str) -> tuple[Execution, int] | None:
        found = self.objects.read(self._record_name(execution_id))
        if found is None:
            return None
        execution = Execution.model_validate_json(found[0])
        self._generations[(execution.id, execution.version)] = found[1]
        return execution, found[1]

    def get(self, execution_id: str) -> Execution | None:
        found = self._read(execution_id)
        return found[0] if found else None

    def update(self, execution: Execution) -> Execution:
        key = (execution.id, execution.version)
        generation = self._generations.get(key)
        if generation is None:
            found = self._read(execution.id)
            if found is None:
                raise VersionConflict(f"execution {execution.id} does not exist")
            if found[0].version != execution.version:
                raise VersionConflict(
                    f"execution {execution.id} changed (version {found[0].version}, expected {execution.version})"
                )
            generation = found[1]
        stored = execution.model_copy(update={"version": execution.version + 1})
        new_generation = self.objects.replace(
            self._record_name(execution.id), stored.model_dump_json().encode(), generation
        )
        self._generations.pop(key, None)
        if new_generation is None:
            raise VersionConflict(f"execution {execution.id} was changed by someone else")
        self._generations[(stored.id, stored.version)] = new_generation
        return stored

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        found: list[Execution] = []
        last_index: str | None = None
        more = False
        start = f"index/{query.cursor}" if query.cursor else None
        for name in self.objects.names("index/", start_offset=start, page_size=max(query.limit, 50)):
            entry = name[len("index/") :]
            if query.cursor and entry <= query.cursor:
                continue
            stamp, _, execution_id = entry.partition("-")
            if query.since is not None and stamp_time(stamp) < query.since:
                break  # everything after this is older
            if len(found) >= query.limit:
                more = True
                break
            last_index = entry
            execution = self.get(execution_id)
            if execution is None or not _matches(execution, query):
                continue
            found.append(execution)
        return ExecutionPage(executions=found, cursor=last_index if more else None)

    def resolve_prefix(self, prefix: str, limit: int = 2) -> Sequence[str]:
        ids: list[str] = []
        for name in self.objects.names(f"executions/{prefix}", page_size=max(limit, 1)):
            ids.append(name[len("executions/") : -len(".json")])
            if len(ids) >= limit:
                break
        return ids

    def append_event(self, execution_id: str, change: StatusChange) -> None:
        name = f"events/{execution_id}/{time.time_ns():020d}-{secrets.token_hex(4)}.json"
        self.objects.create(name, change.model_dump_json().encode())

    def events(self, execution_id: str) -> builtins.list[StatusChange]:
        changes = []
        for name in self.objects.names(f"events/{execution_id}/"):
            found = self.objects.read(name)
            if found is not None:
                changes.append(StatusChange.model_validate_json(found[0]))
        changes.sort(key=lambda c: c.at)
        return changes


def _matches(execution: Execution, query: ExecutionQuery) -> bool:
    if query.statuses is not None and execution.status not in query.statuses:
        return False
    if query.since is not None and execution.created_at < query.since:
        return False
    return all(execution.request.labels.get(k) == v for k, v in query.labels.items())
