"""The lock register (compare-and-swap) on DynamoDB; the lease protocol itself lives in runvoy_core.locks.

One item per lock name: ``name`` (key), ``value`` (the LockRecord as JSON), ``version`` (a counter).
Create is PutItem with ``attribute_not_exists(#n)``; replace is PutItem with ``version = :seen``; reads are
strongly consistent. Records are never deleted (the fence counter must survive a release).

Locks and slots (not the queue's counter and tickets, ``runvoy_core.lock_queue``: one per queued run) also
carry ``kind`` = "lock", the key of the sparse KEYS_ONLY index ``by-kind``: ``list_locks`` reads their names
there and the items with a consistent BatchGetItem, however many runs ever queued (decision 0309). Renewals
change no indexed attribute, so they cost the index nothing.
"""

from __future__ import annotations

import builtins
import json
import time
from typing import Any

from runvoy_aws.clients import aws_call, bexc, error_code
from runvoy_core.errors import ConfigError, TransientProviderError
from runvoy_core.lock_queue import is_queue_key
from runvoy_core.ports import Versioned

BY_KIND = "by-kind"
LOCK_KIND = "lock"
BATCH_GET_MAX = 100


def table_definition(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "name", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "name", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": BY_KIND,
                "KeySchema": [
                    {"AttributeName": "kind", "KeyType": "HASH"},
                    {"AttributeName": "name", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    }


class DynamoLockRegister:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def _item(self, name: str, value: dict[str, Any], version: int) -> dict[str, Any]:
        item = {
            "name": {"S": name},
            "value": {"S": json.dumps(value, sort_keys=True, default=str)},
            "version": {"N": str(version)},
        }
        if not is_queue_key(name):
            item["kind"] = {"S": LOCK_KIND}
        return item

    def create_if_absent(self, name: str, value: dict[str, Any]) -> bool:
        with aws_call(f"create lock {name!r}"):
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=self._item(name, value, 1),
                    ConditionExpression="attribute_not_exists(#n)",
                    ExpressionAttributeNames={"#n": "name"},
                )
            except bexc.ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def read(self, name: str) -> Versioned | None:
        with aws_call(f"read lock {name!r}"):
            answer = self._db.get_item(TableName=self._table, Key={"name": {"S": name}}, ConsistentRead=True)
        item = answer.get("Item")
        return _versioned(item) if item else None

    def replace_if_version(self, name: str, value: dict[str, Any], version: str) -> bool:
        try:
            seen = int(version)
        except ValueError:
            return False
        with aws_call(f"update lock {name!r}"):
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=self._item(name, value, seen + 1),
                    ConditionExpression="version = :seen",
                    ExpressionAttributeValues={":seen": {"N": str(seen)}},
                )
            except bexc.ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def list_locks(self) -> builtins.list[tuple[str, Versioned]]:
        """The locks and their slots only: names from ``by-kind`` (eventually consistent, so a lock created
        a moment ago may be missing), values and versions read consistently."""
        names: builtins.list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": BY_KIND,
            "KeyConditionExpression": "kind = :kind",
            "ExpressionAttributeValues": {":kind": {"S": LOCK_KIND}},
        }
        while True:
            with aws_call("list locks"):
                try:
                    answer = self._db.query(**kwargs)
                except bexc.ClientError as exc:
                    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
                    if "index" in message and error_code(exc) in (
                        "ValidationException",
                        "ResourceNotFoundException",
                    ):
                        raise ConfigError(
                            f"the DynamoDB table {self._table} lacks the index {BY_KIND} (or is still building it)",
                            hint="upgrade the table (once) with: runvoy setup --provider aws",
                        ) from None
                    raise
            names.extend(i["name"]["S"] for i in answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        entries: builtins.list[tuple[str, Versioned]] = []
        for start in range(0, len(names), BATCH_GET_MAX):
            entries.extend(self._batch_read(names[start : start + BATCH_GET_MAX]))
        return sorted(entries, key=lambda e: e[0])

    def _batch_read(self, names: builtins.list[str]) -> builtins.list[tuple[str, Versioned]]:
        request: dict[str, Any] = {
            self._table: {"Keys": [{"name": {"S": n}} for n in names], "ConsistentRead": True}
        }
        found: builtins.list[tuple[str, Versioned]] = []
        for attempt in range(8):
            with aws_call("read locks"):
                answer = self._db.batch_get_item(RequestItems=request)
            found.extend(
                (i["name"]["S"], _versioned(i)) for i in answer.get("Responses", {}).get(self._table, [])
            )
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(1.0, 0.05 * 2**attempt))
        raise TransientProviderError("read locks: DynamoDB left keys unprocessed")

    def tag_untagged(self, dry_run: bool) -> int:
        """Give ``kind`` to the locks written before ``by-kind`` existed (setup; one Scan). Returns how many
        were (or, with ``dry_run``, would be) tagged."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "attribute_not_exists(kind)",
            "ProjectionExpression": "#n",
            "ExpressionAttributeNames": {"#n": "name"},
        }
        tagged = 0
        while True:
            with aws_call("find locks without kind"):
                answer = self._db.scan(**kwargs)
            for name in (i["name"]["S"] for i in answer.get("Items", [])):
                if is_queue_key(name):
                    continue
                tagged += 1
                if dry_run:
                    continue
                with aws_call(f"tag lock {name!r}"):
                    try:
                        # no version change: a concurrent compare-and-swap still wins, and writes kind itself
                        self._db.update_item(
                            TableName=self._table,
                            Key={"name": {"S": name}},
                            UpdateExpression="SET kind = :kind",
                            ConditionExpression="attribute_exists(#n)",
                            ExpressionAttributeNames={"#n": "name"},
                            ExpressionAttributeValues={":kind": {"S": LOCK_KIND}},
                        )
                    except bexc.ClientError as exc:
                        if error_code(exc) != "ConditionalCheckFailedException":
                            raise
            last = answer.get("LastEvaluatedKey")
            if not last:
                return tagged
            kwargs["ExclusiveStartKey"] = last

    def list(self) -> builtins.list[tuple[str, Versioned]]:
        # every entry, queue entries too (the register's contract): a consistent Scan
        entries: builtins.list[tuple[str, Versioned]] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            with aws_call("list locks"):
                answer = self._db.scan(**kwargs)
            entries.extend((i["name"]["S"], _versioned(i)) for i in answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                return sorted(entries, key=lambda e: e[0])
            kwargs["ExclusiveStartKey"] = last


def _versioned(item: dict[str, Any]) -> Versioned:
    return Versioned(value=json.loads(item["value"]["S"]), version=item["version"]["N"])
