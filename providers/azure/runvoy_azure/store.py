"""Execution records and their event history in one Azure Table.

Entities:
- PartitionKey ``exec``, RowKey ``r:<id>``: the record (``body`` JSON, split over ``body0..N`` when
  long), its integer ``version``, ``status``, ``created``. Updates are conditional on the entity's ETag
  (``MatchConditions.IfNotModified``), checked against the caller's ``version``.
- PartitionKey ``exec``, RowKey ``t:<inverted created ms>:<id>``: a copy for listing. Table storage returns
  rows in RowKey order, so the inverted timestamp lists newest first; the cursor is the last RowKey.
  The record and its copy are written in one entity-group transaction (same partition), so a listing
  never shows a status the record does not have.
- PartitionKey ``ev:<id>``, RowKey ``<at>:<seq>``: one status change each, read back in order.
One partition for all records is fine at runvoy's write rates (a partition serves ~2,000 entities/s).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from runvoy_azure.clients import AzureClients, azure_call
from runvoy_core.errors import AlreadyExists, NotFound, VersionConflict
from runvoy_core.models import Execution, StatusChange
from runvoy_core.ports import ExecutionPage, ExecutionQuery

PARTITION = "exec"
RECORD = "r:"
LISTING = "t:"
CHUNK = 30_000  # a string property holds at most 32K UTF-16 characters
MAX_MS = 10**13 - 1
_SEQUENCE = itertools.count()


def _ms(moment: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def listing_key(execution: Execution) -> str:
    return f"{LISTING}{MAX_MS - _ms(execution.created_at):013d}:{execution.id}"


def _upper(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _quote(value: str) -> str:
    return value.replace("'", "''")


class TableStore:
    def __init__(self, clients: AzureClients, table: str) -> None:
        self._clients = clients
        self._table_name = table
        self._etags: dict[str, tuple[int, str]] = {}

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
            "chunks": (len(body) + CHUNK - 1) // CHUNK,
        }
        for index in range(props["chunks"]):
            props[f"body{index}"] = body[index * CHUNK : (index + 1) * CHUNK]
        return props

    @staticmethod
    def _execution(entity: Any) -> Execution:
        body = "".join(entity[f"body{index}"] for index in range(int(entity["chunks"])))
        return Execution.model_validate(json.loads(body))

    def _remember(self, execution_id: str, version: int, metadata: Any) -> None:
        etag = (metadata or {}).get("etag")
        if etag:
            self._etags[execution_id] = (version, etag)

    # -- records ----------------------------------------------------------------------------------------------
    def create(self, execution: Execution) -> Execution:
        from azure.data.tables import TableTransactionError

        stored = execution.model_copy(update={"version": 1})
        props = self._props(stored)
        record = {"PartitionKey": PARTITION, "RowKey": RECORD + stored.id, **props}
        listing = {"PartitionKey": PARTITION, "RowKey": listing_key(stored), **props}
        with azure_call("create execution record"):
            try:
                results = self._table.submit_transaction([("create", record), ("create", listing)])
            except TableTransactionError as exc:
                if exc.status_code == 409:
                    raise AlreadyExists(f"execution {execution.id} already exists") from None
                raise
        self._remember(stored.id, 1, results[0] if results else None)
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
        self._remember(execution_id, execution.version, entity.metadata)
        return execution

    def update(self, execution: Execution) -> Execution:
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        seen = execution.version
        known = self._etags.get(execution.id)
        if known is None or known[0] != seen:
            entity = self._get_entity(execution.id)
            if entity is None:
                raise NotFound(f"execution {execution.id} does not exist")
            if int(entity["version"]) != seen:
                raise VersionConflict(
                    f"execution {execution.id} changed meanwhile (version {entity['version']}, expected {seen})"
                )
            known = (seen, entity.metadata["etag"])
        stored = execution.model_copy(update={"version": seen + 1})
        props = self._props(stored)
        record = {"PartitionKey": PARTITION, "RowKey": RECORD + stored.id, **props}
        listing = {"PartitionKey": PARTITION, "RowKey": listing_key(stored), **props}
        operations: list[Any] = [
            (
                "update",
                record,
                {
                    "mode": UpdateMode.REPLACE,
                    "etag": known[1],
                    "match_condition": MatchConditions.IfNotModified,
                },
            ),
            ("upsert", listing, {"mode": UpdateMode.REPLACE}),
        ]
        with azure_call("update execution record"):
            try:
                results = self._table.submit_transaction(operations)
            except TableTransactionError as exc:
                self._etags.pop(execution.id, None)
                if exc.status_code in (412, 404):
                    current = self._get_entity(execution.id)
                    if current is None:
                        raise NotFound(f"execution {execution.id} does not exist") from None
                    raise VersionConflict(
                        f"execution {execution.id} changed meanwhile "
                        f"(version {current['version']}, expected {seen})"
                    ) from None
                raise
        self._remember(stored.id, stored.version, results[0] if results else None)
        return stored

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        lower = f"{LISTING}"
        if query.cursor:
            lower = query.cursor
        upper = _upper(LISTING)
        if query.since is not None:
            upper = f"{LISTING}{MAX_MS - _ms(query.since) + 1:013d}"
        parts = [
            f"PartitionKey eq '{PARTITION}'",
            f"RowKey gt '{_quote(lower)}'",
            f"RowKey lt '{_quote(upper)}'",
        ]
        if query.statuses:
            parts.append("(" + " or ".join(f"status eq '{s.value}'" for s in sorted(query.statuses)) + ")")
        found: list[Execution] = []
        last_key: str | None = None
        more = False
        with azure_call("list execution records"):
            pages = self._table.query_entities(" and ".join(parts), results_per_page=max(query.limit, 1) * 2)
            for entity in pages:
                if len(found) >= query.limit:
                    more = True
                    break
                last_key = entity["RowKey"]
                execution = self._execution(entity)
                if all(execution.request.labels.get(k) == v for k, v in query.labels.items()):
                    found.append(execution)
        return ExecutionPage(executions=found, cursor=last_key if more else None)

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
