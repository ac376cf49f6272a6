"""Namespaced JSON documents (``runvoy_core.ports.optional.DocumentStore``) in the executions table.

Items ``doc#<namespace>`` / ``<key>``: ``value`` (the JSON text) and ``version`` (a random token, new on every
write). One partition per namespace, so a listing is one Query in sort-key order, which is UTF-8 byte order
and, keys being printable ASCII, the order the port promises. The document items carry none of the index
attributes, so no GSI sees them (docs/decisions/1503-aws-documents.md).
"""

from __future__ import annotations

import secrets
from typing import Any

from runvoy_aws.clients import aws_call, bexc, error_code
from runvoy_core.documents import (
    MAX_KEY_CHARS,
    check_key,
    check_limit,
    check_namespace,
    check_prefix,
    decode_value,
    encode_value,
)
from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.ports.optional import Document

DOC_PARTITION = "doc#"
_LOWEST = "\x21"  # the smallest character a key may hold
_HIGHEST = "\x7e"  # the largest


def doc_pk(namespace: str) -> str:
    return DOC_PARTITION + namespace


def _new_version() -> str:
    # random, not a counter: a document deleted and created again must not hand out a version a stale
    # holder still has (a counter would restart at 1 and let that holder overwrite the new document)
    return secrets.token_hex(12)


class DynamoDocuments:
    """The document methods of ``DynamoStore`` (mixed in: the core checks the store with ``isinstance``)."""

    _db: Any
    _table: str

    def _doc_key(self, namespace: str, key: str) -> dict[str, Any]:
        return {"pk": {"S": doc_pk(namespace)}, "sk": {"S": key}}

    def get_document(self, namespace: str, key: str) -> Document | None:
        check_namespace(namespace)
        check_key(key)
        with aws_call("read document"):
            item = self._db.get_item(
                TableName=self._table, Key=self._doc_key(namespace, key), ConsistentRead=True
            ).get("Item")
        return _document(item) if item else None

    def put_document(
        self, namespace: str, key: str, value: dict[str, Any], *, version: str | None = None
    ) -> Document:
        check_namespace(namespace)
        check_key(key)
        if version is not None and not isinstance(version, str):
            raise VersionConflict(f"document {namespace}/{key} has no version {version!r}")
        text = encode_value(value)
        new_version = _new_version()
        item = {**self._doc_key(namespace, key), "value": {"S": text}, "version": {"S": new_version}}
        condition: dict[str, Any]
        if version is None:
            condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :seen",
                "ExpressionAttributeValues": {":seen": {"S": version}},
            }
        with aws_call("write document"):
            try:
                self._db.put_item(TableName=self._table, Item=item, **condition)
            except bexc.ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                if version is None:
                    raise AlreadyExists(f"document {namespace}/{key} exists already") from None
                raise VersionConflict(f"document {namespace}/{key} is not at version {version}") from None
        return Document(key, decode_value(text), new_version)

    def delete_document(self, namespace: str, key: str, *, version: str) -> None:
        check_namespace(namespace)
        check_key(key)
        if not isinstance(version, str):
            raise VersionConflict(f"document {namespace}/{key} has no version {version!r}")
        with aws_call("delete document"):
            try:
                self._db.delete_item(
                    TableName=self._table,
                    Key=self._doc_key(namespace, key),
                    ConditionExpression="version = :seen",
                    ExpressionAttributeValues={":seen": {"S": version}},
                )
            except bexc.ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                raise VersionConflict(f"document {namespace}/{key} is not at version {version}") from None

    def list_documents(
        self, namespace: str, *, prefix: str = "", after: str | None = None, limit: int = 100
    ) -> list[Document]:
        """One Query (more only past DynamoDB's 1 MB a page): the keys of ``prefix`` lie between ``prefix``
        and ``prefix`` padded with the largest character to the longest key, and the first key after
        ``after`` is ``after`` plus the smallest character; BETWEEN takes both bounds at once (a Query has
        one sort-key condition, and an ExclusiveStartKey outside it is refused)."""
        check_namespace(namespace)
        check_prefix(prefix)
        if after is not None:
            check_key(after, what="after key")
        check_limit(limit)
        values: dict[str, Any] = {":pk": {"S": doc_pk(namespace)}}
        condition = "pk = :pk"
        if prefix or after is not None:
            low = prefix or _LOWEST
            if after is not None and after + _LOWEST > low:
                low = after + _LOWEST
            high = prefix + _HIGHEST * (MAX_KEY_CHARS - len(prefix))
            if low > high:
                return []
            condition += " AND sk BETWEEN :low AND :high"
            values[":low"], values[":high"] = {"S": low}, {"S": high}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        found: list[Document] = []
        while len(found) < limit:
            kwargs["Limit"] = limit - len(found)
            with aws_call("list documents"):
                answer = self._db.query(**kwargs)
            found.extend(_document(item) for item in answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        return found[:limit]


def _document(item: dict[str, Any]) -> Document:
    return Document(item["sk"]["S"], decode_value(item["value"]["S"]), item["version"]["S"])
