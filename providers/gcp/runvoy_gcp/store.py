"""Execution records, their event history and cost rollups as GCS objects.

    <prefix>executions/<id>.json              the record (create-only, then generation-matched writes)
    <prefix>index/<inverted ms>-<id>          empty; lexicographic order = newest first
    <prefix>by-status/<STATUS>/<inverted ms>-<id>   empty; one per run, under its current status
    <prefix>by-label/<key=value>/<inverted ms>-<id> empty; one per label of the run (labels never change)
    <prefix>events/<id>/<ns>-<rand>.json      one object per status change (create-only, append-only)
    <prefix>rollups/counted/<id>.json         create-only: this run is counted, into which bucket, with what
    <prefix>rollups/hours/<bucket key>.<n>.json  shard n of an hour bucket: the sum (in the object's
                                              metadata, so a listing returns it) and the ids counted in it
    <prefix>documents/<namespace>/<key>       one document of the team service (runvoy_gcp.documents)

``Execution.version`` stays the port's counter (1 on create, +1 per update); the compare-and-swap itself is
on the object's generation: the record is read, its version compared, and written with
``if_generation_match`` of the generation just read (or remembered from this process's last write).

A page of ``list`` is one listing call per index it reads (the status filter picks ``by-status``, a label
filter ``by-label``, else ``index``) plus one GET per record it examines, and it examines a bounded number
of records: a filter that matches little returns a short page with a cursor instead of reading on. Index
entries are hints; the record read for them decides (decision 0606).
"""

from __future__ import annotations

import builtins
import hashlib
import heapq
import itertools
import json
import random
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from runvoy_core.cost.rollups import (
    RollupRow,
    bucket_key,
    bucket_of,
    combine,
    floor_hour,
    hour_key,
    merge,
    row_from_dict,
    row_from_json,
    row_to_dict,
    row_to_json,
)
from runvoy_core.errors import AlreadyExists, RunvoyError, TransientProviderError, VersionConflict
from runvoy_core.logging import get_logger
from runvoy_core.models import Execution, Status, StatusChange
from runvoy_core.ports import ExecutionPage, ExecutionQuery
from runvoy_gcp.documents import GcsDocuments
from runvoy_gcp.objects import ObjectStore

log = get_logger("runvoy.gcp.store")

_INVERT_MS = 10**13  # later than year 2286: every inverted stamp has 13 digits

LIST_SLACK = 50
"""Records a filtered page may read beyond its limit (entries that turned out not to match, or stale index
entries) before it stops and returns a cursor: the cost of a page stays bounded however sparse the filter."""

ROLLUP_SHARDS = 4
"""Shards of one hour bucket: runs that end together update different objects (GCS allows about one write
per second to one object name), and a listing of a 30-day period stays a few pages."""

ROLLUP_ATTEMPTS = 30
"""Read-modify-write tries of one shard before giving up (the run stays uncounted; reconcile re-adds it)."""

INDEXED_MARKER = "layout/status-and-label-indexes"
"""Written once every run stored before these indexes existed has its entries (decision 0606)."""

_ROW_META = "runvoy-rollup"
_ROW_META_MAX = 4000  # custom metadata is capped at 8 KiB an object; a larger row is read from the body
_LABEL_SEGMENT_MAX = 200


def index_stamp(when: datetime) -> str:
    ms = int(when.astimezone(UTC).timestamp() * 1000)
    return f"{_INVERT_MS - ms:013d}"


def stamp_time(stamp: str) -> datetime:
    return datetime.fromtimestamp((_INVERT_MS - int(stamp)) / 1000, UTC)


def label_segment(key: str, value: str) -> str:
    """The folder of one label in ``by-label/``: percent-encoded (``/`` and ``=`` may appear in labels),
    hashed when long (an object name has at most 1024 bytes). A collision only costs reads: the record's
    labels are checked."""
    segment = f"{quote(key, safe='')}={quote(value, safe='')}"
    if len(segment) <= _LABEL_SEGMENT_MAX:
        return segment
    return "h-" + hashlib.sha256(f"{key}={value}".encode()).hexdigest()[:32]


class GcsExecutionStore(GcsDocuments):
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self._generations: dict[tuple[str, int], tuple[int, Status]] = {}
        """(id, version) -> (generation, status) of the record this process last read or wrote."""
        self._writers: ThreadPoolExecutor | None = None
        self._pool_guard = threading.Lock()

    @staticmethod
    def _record_name(execution_id: str) -> str:
        return f"executions/{execution_id}.json"

    @staticmethod
    def _entry(execution: Execution) -> str:
        return f"{index_stamp(execution.created_at)}-{execution.id}"

    def _status_name(self, status: Status, execution: Execution) -> str:
        return f"by-status/{status.value}/{self._entry(execution)}"

    def create(self, execution: Execution) -> Execution:
        stored = execution.model_copy(update={"version": 1})
        generation = self.objects.create(self._record_name(stored.id), stored.model_dump_json().encode())
        if generation is None:
            raise AlreadyExists(f"execution {stored.id} already exists", hint="use a new execution id")
        self._generations[(stored.id, 1)] = (generation, stored.status)
        # at once: a run's start waits for two round trips, as it did before there was more than one index
        names = self._index_names(stored, stored.status)
        list(self._pool().map(lambda name: self.objects.create(name, b""), names))
        return stored

    def _index_names(self, execution: Execution, status: Status) -> builtins.list[str]:
        entry = self._entry(execution)
        names = [f"index/{entry}", self._status_name(status, execution)]
        names += [
            f"by-label/{label_segment(k, v)}/{entry}" for k, v in sorted(execution.request.labels.items())
        ]
        return names

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_guard:
            if self._writers is None:
                self._writers = ThreadPoolExecutor(8, thread_name_prefix="runvoy-gcs")
            return self._writers

    def close(self) -> None:
        with self._pool_guard:
            writers, self._writers = self._writers, None
        if writers is not None:
            writers.shutdown(wait=True)

    def _read(self, execution_id: str) -> tuple[Execution, int] | None:
        found = self.objects.read(self._record_name(execution_id))
        if found is None:
            return None
        execution = Execution.model_validate_json(found[0])
        self._generations[(execution.id, execution.version)] = (found[1], execution.status)
        return execution, found[1]

    def get(self, execution_id: str) -> Execution | None:
        found = self._read(execution_id)
        return found[0] if found else None

    def update(self, execution: Execution) -> Execution:
        key = (execution.id, execution.version)
        cached = self._generations.get(key)
        if cached is None:
            found = self._read(execution.id)
            if found is None:
                raise VersionConflict(f"execution {execution.id} does not exist")
            if found[0].version != execution.version:
                raise VersionConflict(
                    f"execution {execution.id} changed (version {found[0].version}, expected {execution.version})"
                )
            cached = (found[1], found[0].status)
        generation, old_status = cached
        stored = execution.model_copy(update={"version": execution.version + 1})
        moved = stored.status != old_status
        if moved:
            # before the record: a crash here leaves an entry too many (the reader checks the record),
            # never a record missing from its status's index
            self.objects.create(self._status_name(stored.status, stored), b"")
        new_generation = self.objects.replace(
            self._record_name(execution.id), stored.model_dump_json().encode(), generation
        )
        self._generations.pop(key, None)
        if new_generation is None:
            # the new status's entry stays: another writer may have made the same move
            raise VersionConflict(f"execution {execution.id} was changed by someone else")
        self._generations[(stored.id, stored.version)] = (new_generation, stored.status)
        if moved:
            try:
                self.objects.delete(self._status_name(old_status, stored))
            except RunvoyError as exc:  # a stale entry only costs a reader one GET
                log.info("gcp.store.stale_status_entry", execution_id=stored.id, error=exc.message)
        return stored

    # -- listing ----------------------------------------------------------------------------------------
    def _sources(self, query: ExecutionQuery) -> list[str]:
        if query.statuses:
            return [f"by-status/{status.value}/" for status in sorted(query.statuses)]
        if query.labels:
            key, value = sorted(query.labels.items())[0]
            return [f"by-label/{label_segment(key, value)}/"]
        return ["index/"]

    def _entries(self, source: str, cursor: str | None, page_size: int) -> Iterator[str]:
        start = f"{source}{cursor}" if cursor else None
        for name in self.objects.names(source, start_offset=start, page_size=page_size):
            entry = name[len(source) :]
            if cursor and entry <= cursor:
                continue
            yield entry

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        exact = not query.statuses and not query.labels
        # every entry of a plain listing is shown, so one more than the limit says whether there is more
        budget = query.limit if exact else query.limit + LIST_SLACK
        sources = self._sources(query)
        # names are "<inverted stamp>-<id>" in every index: merging the sources keeps newest first
        merged = heapq.merge(*(self._entries(s, query.cursor, budget + 1) for s in sources))
        entries = _newer_than(_distinct(merged), query.since)
        found: builtins.list[Execution] = []
        examined = 0
        last: str | None = None
        while True:
            want = min(query.limit - len(found), budget - examined)
            if want <= 0:
                more = next(entries, None) is not None
                break
            batch = builtins.list(itertools.islice(entries, want))
            if not batch:
                more = False
                break
            # in parallel: a page of 50 waits for a few round trips, not 50 (each entry still one GET)
            records = self._pool().map(lambda entry: self.get(entry.partition("-")[2]), batch)
            for entry, execution in zip(batch, records, strict=True):
                examined += 1
                last = entry
                if execution is not None and _matches(execution, query):
                    found.append(execution)
        return ExecutionPage(executions=found, cursor=last if more else None)

    def resolve_prefix(self, prefix: str, limit: int = 2) -> Sequence[str]:
        ids: list[str] = []
        for name in self.objects.names(f"executions/{prefix}", page_size=max(limit, 1)):
            ids.append(name[len("executions/") : -len(".json")])
            if len(ids) >= limit:
                break
        return ids

    def indexed(self) -> bool:
        """Whether every run has its ``by-status``/``by-label`` entries (``reindex`` finished once here)."""
        return self.objects.read(INDEXED_MARKER) is not None

    def reindex(self) -> int:
        """Write the ``by-status``/``by-label`` entries of every stored run that lacks them (runs stored by
        versions before these indexes), then the marker; returns how many runs it visited. Reads every
        record: ``runvoy setup`` runs it once per bucket, nothing else does."""
        visited = self._reindex()
        self.objects.create(INDEXED_MARKER, b"{}")
        return visited

    def _reindex(self) -> int:
        visited = 0
        for name in self.objects.names("index/", page_size=1000):
            entry = name[len("index/") :]
            execution = self.get(entry.partition("-")[2])
            if execution is None:
                continue
            visited += 1
            for index_name in self._index_names(execution, execution.status)[1:]:
                self.objects.create(index_name, b"")
        return visited

    # -- events ------------------------------------------------------------------------------------------
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

    # -- cost rollups (decision 0607) ----------------------------------------------------------------------
    @staticmethod
    def _shard_name(row: RollupRow, execution_id: str) -> str:
        shard = hashlib.sha256(execution_id.encode()).digest()[0] % ROLLUP_SHARDS
        return f"rollups/hours/{bucket_key(row)}.{shard}.json"

    def add_to_rollups(self, execution: Execution) -> bool:
        """Count an ended run into its hour bucket, exactly once per id.

        First the create-only marker ``rollups/counted/<id>.json`` (the bucket and the one-run row, as first
        computed), then the shard, read-modify-written on its generation, with the id in its list. A crash
        between the two leaves a marker whose id is in no shard: the next call (a retry, ``runvoy
        reconcile``) finds the marker, takes the bucket from it and completes the count; the shard's id
        list makes that second write a no-op when the first one did land. So no order of crashes counts a
        run twice or, once someone calls again, not at all."""
        if not execution.status.is_terminal:
            raise ValueError(f"execution {execution.id} has not ended ({execution.status.value})")
        row = bucket_of(execution)
        shard = self._shard_name(row, execution.id)
        marker = f"rollups/counted/{execution.id}.json"
        claim = json.dumps({"bucket": shard, "row": row_to_dict(row)}, separators=(",", ":")).encode()
        if self.objects.create(marker, claim) is None:
            found = self.objects.read(marker)
            if found is None:  # never deleted: only a broken bucket gets here
                raise TransientProviderError(f"rollup marker of {execution.id} vanished")
            first = json.loads(found[0])
            shard, row = str(first["bucket"]), row_from_dict(first["row"])
        return self._count(shard, row, execution.id)

    def _count(self, shard: str, row: RollupRow, execution_id: str) -> bool:
        for attempt in range(ROLLUP_ATTEMPTS):
            found = self.objects.read(shard)
            if found is None:
                total, ids, generation = row, [execution_id], 0
            else:
                body = json.loads(found[0])
                ids = list(body["ids"])
                if execution_id in ids:
                    return False
                total = combine(row_from_dict(body["row"]), row)
                ids.append(execution_id)
                generation = found[1]
            data = json.dumps({"row": row_to_dict(total), "ids": ids}, separators=(",", ":")).encode()
            text = row_to_json(total)
            metadata = {_ROW_META: text} if len(text) <= _ROW_META_MAX else None
            if generation == 0:
                written = self.objects.create(shard, data, metadata)
            else:
                written = self.objects.replace(shard, data, generation, metadata)
            if written is not None:
                return True
            # jittered: the runs that ended together and collided spread out
            time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))
        raise TransientProviderError(
            f"cost rollup {shard} kept changing under {ROLLUP_ATTEMPTS} tries",
            hint="runvoy reconcile counts the run later",
        )

    def rollups(self, since: datetime, until: datetime | None = None) -> builtins.list[RollupRow]:
        """One listing of the hours' shards (their sums ride in the listing's metadata), no run read."""
        first = floor_hour(since)
        end: str | None = None
        stop: datetime | None = None  # buckets before this hour: hour < until <=> hour < until rounded up
        if until is not None:
            until = until if until.tzinfo else until.replace(tzinfo=UTC)
            stop = floor_hour(until)
            if stop != until:
                stop += timedelta(hours=1)
            end = f"rollups/hours/{hour_key(stop)}"
        rows = []
        for listed in self.objects.listing(
            "rollups/hours/",
            start_offset=f"rollups/hours/{hour_key(first)}",
            end_offset=end,
            page_size=1000,
            metadata=True,
        ):
            text: Any = listed.metadata.get(_ROW_META)
            if text is None:
                found = self.objects.read(listed.name)
                if found is None:
                    continue
                text = json.loads(found[0])["row"]
            row = row_from_json(text)
            if row.hour >= first and (stop is None or row.hour < stop):
                rows.append(row)
        return merge(rows)


def _distinct(entries: Iterator[str]) -> Iterator[str]:
    previous = None
    for entry in entries:
        if entry != previous:  # a run briefly in two status folders (moved, old entry not yet deleted)
            yield entry
        previous = entry


def _newer_than(entries: Iterator[str], since: datetime | None) -> Iterator[str]:
    for entry in entries:
        if since is not None and stamp_time(entry.partition("-")[0]) < since:
            return  # everything after this is older
        yield entry


def _matches(execution: Execution, query: ExecutionQuery) -> bool:
    if query.statuses is not None and execution.status not in query.statuses:
        return False
    if query.since is not None and execution.created_at < query.since:
        return False
    return all(execution.request.labels.get(k) == v for k, v in query.labels.items())
