"""The lock register (compare-and-swap) on DynamoDB; the lease protocol itself lives in runvoy_core.locks.

One item per lock name: ``name`` (key), ``value`` (the LockRecord as JSON), ``version`` (a counter).
Create is PutItem with ``attribute_not_exists(#n)``; replace is PutItem with ``version = :seen``; reads are
strongly consistent. Records are never deleted (the fence counter must survive a release).
"""

from __future__ import annotations

import json
from typing import Any

from runvoy_aws.clients import aws_call, bexc, error_code
from runvoy_core.ports import Versioned


def table_definition(name: str) -> dict[str, Any]:
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "name", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "name", "KeyType": "HASH"}],
    }


class DynamoLockRegister:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def _item(self, name: str, value: dict[str, Any], version: int) -> dict[str, Any]:
        return {
            "name": {"S": name},
            "value": {"S": json.dumps(value, sort_keys=True, default=str)},
            "version": {"N": str(version)},
        }

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

    def list(self) -> list[tuple[str, Versioned]]:
        # the locks table holds one item per lock name: a consistent Scan is the listing
        entries: list[tuple[str, Versioned]] = []
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
