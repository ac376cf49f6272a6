"""The lock register (compare-and-swap) on Azure Table storage; the lease protocol lives in runvoy_core.locks.

One entity per entry: RowKey the entry's name (characters Table storage forbids in keys are %-escaped),
``value`` the record as JSON. Locks and their slots live in PartitionKey "lock"; the queue's counter and
tickets (names with ``~``, runvoy_core.lock_queue: one per queued run, never deleted) in "lockq", so
``list_locks`` reads the locks alone however many runs ever queued (decision 0706). Tickets written by
older versions sit in "lock": reads and replaces fall back to them, creates check them.
The version is the entity's ETag: create is ``create_entity`` (409 when present), replace is
``update_entity`` with that ETag and ``MatchConditions.IfNotModified`` (412 when somebody wrote first).
Table storage reads are strongly consistent. Entities are never deleted (the fence counter must survive a
release).
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from runvoy_azure.clients import AzureClients, azure_call
from runvoy_core.ports import Versioned

PARTITION = "lock"
QUEUE_PARTITION = "lockq"
_QUEUE_MARK = "~"  # runvoy_core.lock_queue.QUEUE_SEPARATOR: never in a lock name
_FORBIDDEN = {"/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F", "%": "%25"}


def row_key(name: str) -> str:
    out = name.replace("%", "%25")
    for char, code in _FORBIDDEN.items():
        if char != "%":
            out = out.replace(char, code)
    return out


def name_of(key: str) -> str:
    out = key
    for char, code in _FORBIDDEN.items():
        if char != "%":
            out = out.replace(code, char)
    return out.replace("%25", "%")


class TableLockRegister:
    def __init__(self, clients: AzureClients, table: str) -> None:
        self._clients = clients
        self._table_name = table

    @property
    def _table(self) -> Any:
        return self._clients.tables.get_table_client(self._table_name)

    def create_if_absent(self, name: str, value: dict[str, Any]) -> bool:
        from azure.core.exceptions import ResourceExistsError

        partition = _partition(name)
        if partition != PARTITION and self._get(PARTITION, name) is not None:
            return False  # written by an older version, before queue entries had their own partition
        entity = {"PartitionKey": partition, "RowKey": row_key(name), "value": _dump(value)}
        with azure_call(f"create lock {name!r}"):
            try:
                self._table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    def _get(self, partition: str, name: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        with azure_call(f"read lock {name!r}"):
            try:
                return self._table.get_entity(partition, row_key(name))
            except ResourceNotFoundError:
                return None

    def read(self, name: str) -> Versioned | None:
        partition = _partition(name)
        entity = self._get(partition, name)
        if entity is None and partition != PARTITION:
            entity = self._get(PARTITION, name)
        return None if entity is None else _versioned(entity)

    def replace_if_version(self, name: str, value: dict[str, Any], version: str) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        if not _looks_like_etag(version):
            return False  # not a version this register handed out: it cannot be current
        partitions = [_partition(name)]
        if partitions[0] != PARTITION:
            partitions.append(PARTITION)  # a queue entry of an older version
        for partition in partitions:
            entity = {"PartitionKey": partition, "RowKey": row_key(name), "value": _dump(value)}
            with azure_call(f"update lock {name!r}"):
                try:
                    self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=version,
                        match_condition=MatchConditions.IfNotModified,
                    )
                except ResourceModifiedError:
                    return False
                except ResourceNotFoundError:
                    continue
            return True
        return False

    def list(self) -> list[tuple[str, Versioned]]:
        """Every entry: the locks and the queues' counters and tickets."""
        found = dict(self._list(PARTITION))
        found.update(self._list(QUEUE_PARTITION))
        return sorted(found.items(), key=lambda item: item[0])

    def list_locks(self) -> builtins.list[tuple[str, Versioned]]:
        """The locks and their slots only: one partition, whose size does not grow with the runs."""
        return sorted(
            ((name, entry) for name, entry in self._list(PARTITION) if _QUEUE_MARK not in name),
            key=lambda item: item[0],
        )

    def _list(self, partition: str) -> builtins.list[tuple[str, Versioned]]:
        with azure_call("list locks"):
            entities = builtins.list(self._table.query_entities(f"PartitionKey eq '{partition}'"))
        return [(name_of(e["RowKey"]), _versioned(e)) for e in entities]


def _partition(name: str) -> str:
    return QUEUE_PARTITION if _QUEUE_MARK in name else PARTITION


def _looks_like_etag(version: str) -> bool:
    return version.startswith(('W/"', '"')) and version.endswith('"')


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _versioned(entity: Any) -> Versioned:
    return Versioned(value=json.loads(entity["value"]), version=str(entity.metadata["etag"]))
