"""The lock register (compare-and-swap) on Azure Table storage; the lease protocol lives in runvoy_core.locks.

One entity per lock: PartitionKey "lock", RowKey the lock name (characters Table storage forbids in keys
are %-escaped), ``value`` the LockRecord as JSON. The version is the entity's ETag: create is
``create_entity`` (409 when present), replace is ``update_entity`` with that ETag and
``MatchConditions.IfNotModified`` (412 when somebody wrote first). Table storage reads are strongly
consistent. Entities are never deleted (the fence counter must survive a release).
"""

from __future__ import annotations

import json
from typing import Any

from runvoy_azure.clients import AzureClients, azure_call
from runvoy_core.ports import Versioned

PARTITION = "lock"
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

        entity = {"PartitionKey": PARTITION, "RowKey": row_key(name), "value": _dump(value)}
        with azure_call(f"create lock {name!r}"):
            try:
                self._table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    def read(self, name: str) -> Versioned | None:
        from azure.core.exceptions import ResourceNotFoundError

        with azure_call(f"read lock {name!r}"):
            try:
                entity = self._table.get_entity(PARTITION, row_key(name))
            except ResourceNotFoundError:
                return None
        return _versioned(entity)

    def replace_if_version(self, name: str, value: dict[str, Any], version: str) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        if not _looks_like_etag(version):
            return False  # not a version this register handed out: it cannot be current
        entity = {"PartitionKey": PARTITION, "RowKey": row_key(name), "value": _dump(value)}
        with azure_call(f"update lock {name!r}"):
            try:
                self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=version,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return False
        return True

    def list(self) -> list[tuple[str, Versioned]]:
        with azure_call("list locks"):
            entities = list(self._table.query_entities(f"PartitionKey eq '{PARTITION}'"))
        return sorted(((name_of(e["RowKey"]), _versioned(e)) for e in entities), key=lambda item: item[0])


def _looks_like_etag(version: str) -> bool:
    return version.startswith(('W/"', '"')) and version.endswith('"')


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _versioned(entity: Any) -> Versioned:
    return Versioned(value=json.loads(entity["value"]), version=str(entity.metadata["etag"]))
