"""Namespaced JSON documents (``runvoy_core.ports.optional.DocumentStore``) in the executions table.

PartitionKey ``doc:<namespace>``, RowKey the key encoded by ``row_key``, property ``value`` the JSON text;
the version is the entity's ETag (creates with Insert, replaces and deletes under If-Match). A RowKey may not
hold ``/ \\ # ?``, so each of them becomes two characters after the safe character just below it, and
that character itself two as well (``"`` → ``"0``, ``#`` → ``"1``): a prefix-free code that keeps the order
of every character, so encoded keys sort as the keys do and a key prefix is an encoded-key prefix
(docs/decisions/1505-azure-documents.md). A key doubles at worst: 512 characters, within a RowKey's 1 KiB.
The value's 32 KiB bound (``runvoy_core.documents``) fits one string property (64 KiB of UTF-16).
"""

from __future__ import annotations

import re
from typing import Any

from runvoy_azure.clients import azure_call
from runvoy_core.documents import (
    check_key,
    check_limit,
    check_namespace,
    check_prefix,
    decode_value,
    encode_value,
)
from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.ports.optional import Document

DOC_PARTITION = "doc:"
FORBIDDEN = "#/?\\"
"""The printable ASCII characters a RowKey may not hold."""
_HIGHEST = "\x7e"
_ETAG = re.compile(r"W/\"datetime'[0-9A-Za-z%.:+-]{1,64}'\"")
"""The form of a Table entity's ETag: any other version token was never handed out, and the service (and
Azurite) answers a malformed If-Match with 400, not 412."""


_ENCODE = {chr(point): chr(point) for point in range(0x21, 0x7F)} | {
    '"': '"0',
    "#": '"1',
    ".": ".0",
    "/": ".1",
    ">": ">0",
    "?": ">1",
    "[": "[0",
    "\\": "[1",
}
_DECODE = {code: char for char, code in _ENCODE.items()}
_LEADS = frozenset(code[0] for code in _DECODE if len(code) == 2)


def row_key(key: str) -> str:
    return "".join(_ENCODE[char] for char in key)


def key_of(row: str) -> str:
    chars: list[str] = []
    at = 0
    while at < len(row):
        width = 2 if row[at] in _LEADS else 1
        chars.append(_DECODE[row[at : at + width]])
        at += width
    return "".join(chars)


def _after_prefix(prefix: str) -> str | None:
    """The smallest key greater than every key starting with ``prefix`` (None: there is none)."""
    stripped = prefix.rstrip(_HIGHEST)
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


def _is_etag(version: object) -> bool:
    return isinstance(version, str) and _ETAG.fullmatch(version) is not None


def _quote(value: str) -> str:
    return value.replace("'", "''")


class TableDocuments:
    """The document methods of ``TableStore`` (mixed in: the core checks the store with ``isinstance``)."""

    @property
    def _table(self) -> Any:
        raise NotImplementedError

    def get_document(self, namespace: str, key: str) -> Document | None:
        from azure.core.exceptions import ResourceNotFoundError

        check_namespace(namespace)
        check_key(key)
        with azure_call("read document"):
            try:
                entity = self._table.get_entity(DOC_PARTITION + namespace, row_key(key))
            except ResourceNotFoundError:
                return None
        return Document(key, decode_value(entity["value"]), entity.metadata["etag"])

    def put_document(
        self, namespace: str, key: str, value: dict[str, Any], *, version: str | None = None
    ) -> Document:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        check_namespace(namespace)
        check_key(key)
        if version is not None and not _is_etag(version):
            raise VersionConflict(f"document {namespace}/{key} has no version {version!r}")
        text = encode_value(value)
        entity = {"PartitionKey": DOC_PARTITION + namespace, "RowKey": row_key(key), "value": text}
        with azure_call("write document"):
            try:
                if version is None:
                    written = self._table.create_entity(entity)
                else:
                    written = self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=version,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except ResourceExistsError:
                raise AlreadyExists(f"document {namespace}/{key} exists already") from None
            except (ResourceModifiedError, ResourceNotFoundError):
                raise VersionConflict(f"document {namespace}/{key} is not at version {version}") from None
        return Document(key, decode_value(text), written["etag"])

    def delete_document(self, namespace: str, key: str, *, version: str) -> None:
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError

        check_namespace(namespace)
        check_key(key)
        if not _is_etag(version):
            raise VersionConflict(f"document {namespace}/{key} has no version {version!r}")
        entity = {"PartitionKey": DOC_PARTITION + namespace, "RowKey": row_key(key)}
        condition = {"etag": version, "match_condition": MatchConditions.IfNotModified}
        with azure_call("delete document"):
            try:
                # a transaction of one: TableClient.delete_entity takes a missing entity for deleted
                self._table.submit_transaction([("delete", entity, condition)])
            except TableTransactionError as exc:
                if exc.status_code in (404, 412):
                    raise VersionConflict(f"document {namespace}/{key} is not at version {version}") from None
                raise

    def list_documents(
        self, namespace: str, *, prefix: str = "", after: str | None = None, limit: int = 100
    ) -> list[Document]:
        """One RowKey range, read until ``limit`` rows: ``prefix`` <= key < the first key past the prefix,
        key > ``after``, all encoded (the code keeps the order)."""
        check_namespace(namespace)
        check_prefix(prefix)
        if after is not None:
            check_key(after, what="after key")
        check_limit(limit)
        condition = f"PartitionKey eq '{_quote(DOC_PARTITION + namespace)}'"
        if prefix:
            condition += f" and RowKey ge '{_quote(row_key(prefix))}'"
            beyond = _after_prefix(prefix)
            if beyond is not None:
                condition += f" and RowKey lt '{_quote(row_key(beyond))}'"
        if after is not None:
            condition += f" and RowKey gt '{_quote(row_key(after))}'"
        found: list[Document] = []
        with azure_call("list documents"):
            for entity in self._table.query_entities(condition, results_per_page=limit):
                found.append(
                    Document(key_of(entity["RowKey"]), decode_value(entity["value"]), entity.metadata["etag"])
                )
                if len(found) >= limit:
                    break
        return found
