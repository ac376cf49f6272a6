"""Execution records, their event history and the cost rollups in one Azure Table.

Entities of PartitionKey ``exec`` (one partition, so a record and its copies are written in one
entity-group transaction and a listing never shows a status the record does not have):
- RowKey ``r:<id>``: the record (``body`` JSON, split over ``body0..N`` when long), its integer ``version``,
  ``status``, ``created``, ``layout``. Updates are conditional on the entity's ETag
  (``MatchConditions.IfNotModified``), checked against the caller's ``version``.
- Listing copies, each the whole record, keyed ``<index><inverted created ms>:<id>``; Table storage returns
  rows in RowKey order, so a RowKey range lists newest first and reads only the rows it returns:
  ``t:`` every run; ``s:<STATUS>:`` the runs of one status (the copy moves when the status changes);
  ``l:<hash of key and value>:`` the runs carrying one label. The cursor is ``<inverted ms>:<id>``, the
  same position in every index (docs/decisions/0704-azure-table-list-indexes.md).
PartitionKey ``ev:<id>``, RowKey ``<at>:<seq>``: one status change each, read back in order.
PartitionKey ``cost``: hour buckets of ended runs' costs (RowKey ``b:<bucket_key>``, hour first) and one
``c:<id>`` marker per counted run, written together in one transaction
(docs/decisions/0705-azure-cost-rollups.md).
PartitionKey ``meta``, RowKey ``layout``: the layout ``runvoy setup`` brought the older records to.
PartitionKey ``doc:<namespace>``: the documents of the team service (``runvoy_azure.documents``).
One partition for all records is fine at runvoy's write rates (a partition serves ~2,000 entities/s).
"""

from __future__ import annotations

import builtins
import hashlib
import heapq
import itertools
import json
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from runvoy_azure.clients import AzureClients, azure_call
from runvoy_azure.documents import TableDocuments
from runvoy_core.errors import AlreadyExists, NotFound, TransientProviderError, VersionConflict
from runvoy_core.logging import get_logger
from runvoy_core.models import Execution, Status, StatusChange
from runvoy_core.ports import ExecutionPage, ExecutionQuery

if TYPE_CHECKING:
    from runvoy_core.cost.rollups import RollupRow

PARTITION = "exec"
RECORD = "r:"
LISTING = "t:"
BY_STATUS = "s:"
BY_LABEL = "l:"
LAYOUT = 2
"""Records written with ``layout`` 2 have their ``s:`` and ``l:`` copies (older ones only ``t:``)."""
CHUNK = 30_000  # a string property holds at most 32K UTF-16 characters
MAX_MS = 10**13 - 1
MAX_PAGE = 1000  # Table storage returns at most this many entities per request
BATCH_OPERATIONS = 100  # Table storage's limit per entity-group transaction
BATCH_BYTES = 3 * 1024 * 1024  # below the 4 MiB limit of a transaction's payload, with room for framing
META = "meta"
COST = "cost"
BUCKET = "b:"
COUNTED = "c:"
ROLLUP_ATTEMPTS = 64
"""Conditional writes of one bucket before giving up: each round of a race has one winner, so this only
ends a pathological pile-up (the runner logs it, reconcile counts the run later)."""
_SEQUENCE = itertools.count()
log = get_logger("runvoy.azure.store")


class _Known(NamedTuple):
    """What this process last wrote or read of a record: enough to update it without reading it first."""

    version: int
    etag: str
    status: str
    layout: int


def _ms(moment: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _position(execution: Execution) -> str:
    """The place of a run in every listing: newest first, then by id."""
    return f"{MAX_MS - _ms(execution.created_at):013d}:{execution.id}"


def listing_key(execution: Execution) -> str:
    return LISTING + _position(execution)


def status_prefix(status: Status | str) -> str:
    return f"{BY_STATUS}{Status(status).value}:"


def label_prefix(key: str, value: str) -> str:
    """Hashed: a label value may hold characters a RowKey may not (``/ \\ # ?``) and be 256 long."""
    digest = hashlib.sha256(f"{key}\0{value}".encode()).hexdigest()[:32]
    return f"{BY_LABEL}{digest}:"


def _upper(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _size(props: dict[str, Any]) -> int:
    """A generous estimate of an entity's bytes in a transaction (JSON escaping, property names, framing)."""
    return sum(len(str(v)) for v in props.values()) * 5 // 4 + 1024


class TableStore(TableDocuments):
    def __init__(self, clients: AzureClients, table: str) -> None:
        self._clients = clients
        self._table_name = table
        self._known: dict[str, _Known] = {}

    @property
    def _table(self) -> Any:
        return self._clients.tables.get_table_client(self._table_name)

    # -- entities ---------------------------------------------------------------------------------------------
    def _props(self, execution: Execution) -> dict[str, Any]:
        body = execution.model_dump_json()
        props: dict[str, Any] = {
            "id": execution.id,
            "version": execution.version,
            "status": execution.status.value,
            "created": execution.created_at.isoformat(),
            "layout": LAYOUT,
            "chunks": (len(body) + CHUNK - 1) // CHUNK,
        }
        for index in range(props["chunks"]):
            props[f"body{index}"] = body[index * CHUNK : (index + 1) * CHUNK]
        return props

    @staticmethod
    def _execution(entity: Any) -> Execution:
        body = "".join(entity[f"body{index}"] for index in range(int(entity["chunks"])))
        return Execution.model_validate(json.loads(body))

    def entities(
        self, execution: Execution
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """The record, its ``t:`` and ``s:`` copies, and its ``l:`` copies (one per label)."""
        props = self._props(execution)
        position = _position(execution)

        def entity(row_key: str) -> dict[str, Any]:
            return {"PartitionKey": PARTITION, "RowKey": row_key, **props}

        copies = [entity(LISTING + position), entity(status_prefix(execution.status) + position)]
        labels = [entity(label_prefix(k, v) + position) for k, v in sorted(execution.request.labels.items())]
        return entity(RECORD + execution.id), copies, labels

    def _remember(self, execution: Execution, metadata: Any, layout: int = LAYOUT) -> None:
        etag = (metadata or {}).get("etag")
        if etag:
            self._known[execution.id] = _Known(execution.version, etag, execution.status.value, layout)

    def _submit(self, first: list[Any], more: list[Any]) -> Any:
        """``first`` in one transaction with as many of ``more`` as fit; the rest in further transactions.

        Only label copies ever overflow (a run with dozens of labels or a long record). Once the first
        transaction committed, the write happened: a failure of a later one is logged, not raised (the
        caller would take it for a lost write), and leaves a label listing one write behind until the
        record's next write."""
        batches: list[list[Any]] = [list(first)]
        size = sum(_size(op[1]) for op in first)
        for op in more:
            grown = size + _size(op[1])
            if len(batches[-1]) >= BATCH_OPERATIONS or grown > BATCH_BYTES:
                batches.append([])
                grown = _size(op[1])
            batches[-1].append(op)
            size = grown
        results = self._table.submit_transaction(batches[0])
        for batch in batches[1:]:
            try:
                self._table.submit_transaction(batch)
            except Exception as exc:  # any failure: the record is written, only label copies lag
                log.warning("store.label_copies_not_written", entities=len(batch), error=str(exc))
                break
        return results

    # -- records ----------------------------------------------------------------------------------------------
    def create(self, execution: Execution) -> Execution:
        from azure.data.tables import TableTransactionError, UpdateMode

        stored = execution.model_copy(update={"version": 1})
        record, copies, labels = self.entities(stored)
        replace = {"mode": UpdateMode.REPLACE}
        with azure_call("create execution record"):
            try:
                results = self._submit(
                    [("create", record), *(("upsert", c, replace) for c in copies)],
                    [("upsert", c, replace) for c in labels],
                )
            except TableTransactionError as exc:
                if exc.status_code == 409:
                    raise AlreadyExists(f"execution {execution.id} already exists") from None
                raise
        self._remember(stored, results[0] if results else None)
        return stored

    def _get_entity(self, execution_id: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        with azure_call("read execution record"):
            try:
                return self._table.get_entity(PARTITION, RECORD + execution_id)
            except ResourceNotFoundError:
                return None

    def get(self, execution_id: str) -> Execution | None:
        entity = self._get_entity(execution_id)
        if entity is None:
            return None
        execution = self._execution(entity)
        self._remember(execution, entity.metadata, int(entity.get("layout") or 1))
        return execution

    def update(self, execution: Execution) -> Execution:
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        seen = execution.version
        known = self._known.get(execution.id)
        if known is None or known.version != seen:
            entity = self._get_entity(execution.id)
            if entity is None:
                raise NotFound(f"execution {execution.id} does not exist")
            if int(entity["version"]) != seen:
                raise VersionConflict(
                    f"execution {execution.id} changed meanwhile (version {entity['version']}, expected {seen})"
                )
            known = _Known(
                seen, entity.metadata["etag"], str(entity["status"]), int(entity.get("layout") or 1)
            )
        stored = execution.model_copy(update={"version": seen + 1})
        record, copies, labels = self.entities(stored)
        replace = {"mode": UpdateMode.REPLACE}
        first: list[Any] = [
            (
                "update",
                record,
                {
                    "mode": UpdateMode.REPLACE,
                    "etag": known.etag,
                    "match_condition": MatchConditions.IfNotModified,
                },
            ),
            *(("upsert", c, replace) for c in copies),
        ]
        if known.layout >= LAYOUT and known.status != stored.status.value:
            # the copy under the old status exists (written with the record): a delete of a missing entity
            # would fail the whole transaction, so records of the older layout skip it
            old = {"PartitionKey": PARTITION, "RowKey": status_prefix(known.status) + _position(stored)}
            first.append(("delete", old))
        with azure_call("update execution record"):
            try:
                results = self._submit(first, [("upsert", c, replace) for c in labels])
            except TableTransactionError as exc:
                self._known.pop(execution.id, None)
                if exc.status_code in (412, 404):
                    current = self._get_entity(execution.id)
                    if current is None:
                        raise NotFound(f"execution {execution.id} does not exist") from None
                    raise VersionConflict(
                        f"execution {execution.id} changed meanwhile "
                        f"(version {current['version']}, expected {seen})"
                    ) from None
                raise
        self._remember(stored, results[0] if results else None)
        return stored

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        """One RowKey range per index read (one per status asked for), each at most ``limit + 1`` rows.

        The index: a label's when labels are asked for (further labels and statuses filter its rows), else
        one per status, else every run."""
        limit = max(query.limit, 1)
        labels = sorted(query.labels.items())
        statuses = frozenset(query.statuses or ())
        status_filter = ""
        if labels:
            prefixes = [label_prefix(*labels[0])]
            if statuses:
                status_filter = (
                    " and (" + " or ".join(f"status eq '{s.value}'" for s in sorted(statuses)) + ")"
                )
        elif statuses and statuses != frozenset(Status):
            prefixes = [status_prefix(s) for s in sorted(statuses)]
        else:
            prefixes = [LISTING]
        until = None if query.since is None else f"{MAX_MS - _ms(query.since) + 1:013d}"

        def rows(prefix: str) -> Iterator[tuple[str, Any]]:
            lower = prefix + (query.cursor or "")
            upper = prefix + until if until is not None else _upper(prefix)
            condition = f"PartitionKey eq '{PARTITION}' and RowKey gt '{_quote(lower)}' and RowKey lt '{_quote(upper)}'"
            for entity in self._table.query_entities(
                condition + status_filter, results_per_page=min(limit + 1, MAX_PAGE)
            ):
                yield entity["RowKey"][len(prefix) :], entity

        found: list[Execution] = []
        last: str | None = None
        more = False
        with azure_call("list execution records"):
            for position, entity in heapq.merge(*(rows(p) for p in prefixes), key=lambda row: row[0]):
                execution = self._execution(entity)
                if any(execution.request.labels.get(k) != v for k, v in labels[1:]):
                    continue
                if statuses and execution.status not in statuses:
                    continue
                if len(found) >= limit:
                    more = True
                    break
                found.append(execution)
                last = position
        return ExecutionPage(executions=found, cursor=last if more else None)

    def resolve_prefix(self, prefix: str, limit: int = 2) -> Sequence[str]:
        if not prefix:
            return []
        low = RECORD + prefix
        condition = f"PartitionKey eq '{PARTITION}' and RowKey ge '{_quote(low)}' and RowKey lt '{_quote(_upper(low))}'"
        ids: list[str] = []
        with azure_call("look up execution ids"):
            for entity in self._table.query_entities(condition, select=["RowKey"], results_per_page=limit):
                ids.append(entity["RowKey"][len(RECORD) :])
                if len(ids) >= limit:
                    break
        return ids

    # -- layout ---------------------------------------------------------------------------------------------
    def upgrade_layout(self, dry_run: bool = False) -> int:
        """Give the records of an older layout their status and label copies (``runvoy setup``); the number
        of records that needed it. Reads every record once, then notes the layout so later setups do not."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableTransactionError, UpdateMode

        with azure_call("read the table's layout"):
            try:
                if int(self._table.get_entity(META, "layout")["value"]) >= LAYOUT:
                    return 0
            except ResourceNotFoundError:
                pass
        condition = f"PartitionKey eq '{PARTITION}' and RowKey ge '{RECORD}' and RowKey lt '{_upper(RECORD)}'"
        with azure_call("list execution records"):
            older = [
                e["RowKey"][len(RECORD) :]
                for e in self._table.query_entities(
                    condition, select=["RowKey", "layout"], results_per_page=1000
                )
                if int(e.get("layout") or 1) < LAYOUT
            ]
        if dry_run:
            return len(older)
        replace = {"mode": UpdateMode.REPLACE}
        for execution_id in older:
            entity = self._get_entity(execution_id)
            if entity is None or int(entity.get("layout") or 1) >= LAYOUT:
                continue
            record, copies, labels = self.entities(self._execution(entity))
            matching = {"etag": entity.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
            with azure_call("index an execution record"):
                try:
                    self._submit(
                        [
                            ("update", record, {**replace, **matching}),
                            *(("upsert", c, replace) for c in copies),
                        ],
                        [("upsert", c, replace) for c in labels],
                    )
                except TableTransactionError as exc:
                    if exc.status_code != 412:
                        raise
                    # written meanwhile by a client of this layout, which wrote the copies with it
        with azure_call("note the table's layout"):
            self._table.upsert_entity({"PartitionKey": META, "RowKey": "layout", "value": LAYOUT})
        return len(older)

    # -- events -----------------------------------------------------------------------------------------------
    def append_event(self, execution_id: str, change: StatusChange) -> None:
        at = change.at if change.at.tzinfo else change.at.replace(tzinfo=UTC)
        entity = {
            "PartitionKey": f"ev:{execution_id}",
            "RowKey": f"{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}:{next(_SEQUENCE):09d}:{os.getpid()}",
            "body": change.model_dump_json(),
        }
        with azure_call("append execution event"):
            self._table.create_entity(entity)

    def events(self, execution_id: str) -> Sequence[StatusChange]:
        with azure_call("read execution events"):
            entities = list(self._table.query_entities(f"PartitionKey eq '{_quote('ev:' + execution_id)}'"))
        return [StatusChange.model_validate_json(e["body"]) for e in entities]

    # -- cost rollups -----------------------------------------------------------------------------------------
    def add_to_rollups(self, execution: Execution) -> bool:
        """The ``c:<id>`` marker is created in the same transaction as the bucket's write (the bucket
        conditional on its ETag): a retry after an unknown outcome finds the marker and adds nothing."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableTransactionError, UpdateMode

        from runvoy_core.cost.rollups import bucket_key, bucket_of, combine, row_from_json, row_to_json

        if self._counted(execution.id):
            # one point read: `runvoy reconcile` offers every ended run of two months, nearly all counted
            return False
        row = bucket_of(execution)
        key = BUCKET + bucket_key(row)
        marker = {"PartitionKey": COST, "RowKey": COUNTED + execution.id, "bucket": key}
        for _ in range(ROLLUP_ATTEMPTS):
            with azure_call("read cost rollup"):
                try:
                    current: Any = self._table.get_entity(COST, key)
                except ResourceNotFoundError:
                    current = None
            bucket: tuple[Any, ...]
            if current is None:
                bucket = ("create", {"PartitionKey": COST, "RowKey": key, "row": row_to_json(row)})
            else:
                total = combine(row_from_json(current["row"]), row)
                bucket = (
                    "update",
                    {"PartitionKey": COST, "RowKey": key, "row": row_to_json(total)},
                    {
                        "mode": UpdateMode.REPLACE,
                        "etag": current.metadata["etag"],
                        "match_condition": MatchConditions.IfNotModified,
                    },
                )
            with azure_call("count a run into its cost rollup"):
                try:
                    self._table.submit_transaction([("create", marker), bucket])
                    return True
                except TableTransactionError as exc:
                    if exc.status_code not in (409, 412):
                        raise
            # the marker exists (counted before) or another run wrote the bucket first: ask which
            if self._counted(execution.id):
                return False
        raise TransientProviderError(
            f"cost rollup of execution {execution.id}: {ROLLUP_ATTEMPTS} conflicting writes in a row"
        )

    def _counted(self, execution_id: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        with azure_call("read cost rollup marker"):
            try:
                self._table.get_entity(COST, COUNTED + execution_id, select=["RowKey"])
            except ResourceNotFoundError:
                return False
        return True

    def rollups(self, since: datetime, until: datetime | None = None) -> builtins.list[RollupRow]:
        """One RowKey range over the buckets (keys start with their hour); the markers are not read."""
        from runvoy_core.cost.rollups import floor_hour, hour_key, row_from_json

        lower = BUCKET + hour_key(since)
        if until is None:
            upper = _upper(BUCKET)
        else:
            moment = until if until.tzinfo else until.replace(tzinfo=UTC)
            # the buckets of hours starting before `until`: up to and including the hour of its last instant
            upper = BUCKET + hour_key(floor_hour(moment - timedelta(microseconds=1))) + "."
        if upper <= lower:
            return []
        condition = (
            f"PartitionKey eq '{COST}' and RowKey ge '{_quote(lower)}' and RowKey lt '{_quote(upper)}'"
        )
        with azure_call("read cost rollups"):
            entities = list(self._table.query_entities(condition, select=["row"], results_per_page=1000))
        return [row_from_json(e["row"]) for e in entities]
