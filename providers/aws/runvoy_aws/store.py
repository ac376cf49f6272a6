"""Execution records and their event history in one DynamoDB table.

Items (``pk``, ``sk``):
- ``exec#<id>`` / ``record``: the record as JSON (``body``), its ``version`` (conditional writes), and the
  index keys below. A record over ``INLINE_LIMIT`` bytes goes to S3 (``records/<id>.json``) and the item
  keeps ``body_key``.
- ``exec#<id>`` / ``event#<at>#<ns>``: one status change each, read back in order with a Query.

Indexes (projection ALL, so listings read no base item):
- ``by-created``: ``list_pk`` = "exec" (one constant partition), ``list_sk`` = "<created_at>#<id>":
  newest first with ScanIndexForward=False; the cursor is the last ``list_sk`` returned.
- ``by-status``: ``status_pk`` = "status#<STATUS>", ``list_sk``: one query per wanted status, merged.
- ``by-id``: ``list_pk`` = "exec", ``id``: ``resolve_prefix`` is ``begins_with(id, :prefix)``.
One constant partition is fine at runvoy's write rates (far below a partition's 1,000 writes/s); the
hot path (create, get, update, events) touches only the base table.
"""

from __future__ import annotations

import builtins
import heapq
import itertools
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from runvoy_aws.clients import aws_call, bexc, error_code
from runvoy_core.errors import AlreadyExists, NotFound, VersionConflict
from runvoy_core.models import Execution, StatusChange
from runvoy_core.ports import ExecutionPage, ExecutionQuery

LIST_PARTITION = "exec"
RECORD_SK = "record"
INLINE_LIMIT = 300_000  # DynamoDB items are capped at 400 KB
BY_CREATED = "by-created"
BY_STATUS = "by-status"
BY_ID = "by-id"


def iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments (used by setup)."""

    def index(name: str, pk: str, sk: str) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": pk, "KeyType": "HASH"},
                {"AttributeName": sk, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": "S"}
            for a in ("pk", "sk", "list_pk", "list_sk", "status_pk", "id")
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            index(BY_CREATED, "list_pk", "list_sk"),
            index(BY_STATUS, "status_pk", "list_sk"),
            index(BY_ID, "list_pk", "id"),
        ],
    }


class DynamoStore:
    def __init__(self, dynamodb: Any, table: str, s3_factory: Any = None, bucket: str | None = None) -> None:
        self._db = dynamodb
        self._table = table
        self._s3_factory = s3_factory
        self._bucket = bucket

    # -- records --------------------------------------------------------------------------------------
    def create(self, execution: Execution) -> Execution:
        stored = execution.model_copy(update={"version": 1})
        with aws_call("create execution record"):
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=self._item(stored),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except bexc.ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise AlreadyExists(f"execution {execution.id} already exists") from None
                raise
        return stored

    def get(self, execution_id: str) -> Execution | None:
        with aws_call("read execution record"):
            answer = self._db.get_item(
                TableName=self._table,
                Key={"pk": {"S": f"exec#{execution_id}"}, "sk": {"S": RECORD_SK}},
                ConsistentRead=True,
            )
        item = answer.get("Item")
        return self._from_item(item) if item else None

    def update(self, execution: Execution) -> Execution:
        seen = execution.version
        stored = execution.model_copy(update={"version": seen + 1})
        with aws_call("update execution record"):
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=self._item(stored),
                    ConditionExpression="version = :seen",
                    ExpressionAttributeValues={":seen": {"N": str(seen)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except bexc.ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                old = exc.response.get("Item")
                if old is None and self.get(execution.id) is None:
                    raise NotFound(f"execution {execution.id} does not exist") from None
                current = old.get("version", {}).get("N") if old else "?"
                raise VersionConflict(
                    f"execution {execution.id} changed meanwhile (version {current}, expected {seen})"
                ) from None
        return stored

    def _item(self, execution: Execution) -> dict[str, Any]:
        body = execution.model_dump_json()
        list_sk = f"{iso(execution.created_at)}#{execution.id}"
        item: dict[str, Any] = {
            "pk": {"S": f"exec#{execution.id}"},
            "sk": {"S": RECORD_SK},
            "id": {"S": execution.id},
            "version": {"N": str(execution.version)},
            "status": {"S": str(execution.status)},
            "list_pk": {"S": LIST_PARTITION},
            "list_sk": {"S": list_sk},
            "status_pk": {"S": f"status#{execution.status}"},
            "created_at": {"S": iso(execution.created_at)},
        }
        if len(body) > INLINE_LIMIT and self._bucket and self._s3_factory is not None:
            key = f"records/{execution.id}.json"
            with aws_call("store large execution record in S3"):
                self._s3_factory().put_object(
                    Bucket=self._bucket, Key=key, Body=body.encode(), ContentType="application/json"
                )
            item["body_key"] = {"S": key}
        else:
            item["body"] = {"S": body}
        return item

    def _from_item(self, item: dict[str, Any]) -> Execution:
        if "body" in item:
            body = item["body"]["S"]
        else:
            with aws_call("read large execution record from S3"):
                body = (
                    self._s3_factory()
                    .get_object(Bucket=self._bucket, Key=item["body_key"]["S"])["Body"]
                    .read()
                )
        execution = Execution.model_validate_json(body)
        return execution.model_copy(update={"version": int(item["version"]["N"])})

    # -- listing --------------------------------------------------------------------------------------
    def list(self, query: ExecutionQuery) -> ExecutionPage:
        limit = max(1, query.limit)
        if query.statuses:
            sources = [
                self._query(BY_STATUS, "status_pk", f"status#{status}", query)
                for status in sorted(query.statuses)
            ]
            merged: Iterator[dict[str, Any]] = heapq.merge(
                *sources, key=lambda item: item["list_sk"]["S"], reverse=True
            )
        else:
            merged = self._query(BY_CREATED, "list_pk", LIST_PARTITION, query)
        wanted = (self._from_item(item) for item in merged)
        if query.labels:
            wanted = (e for e in wanted if all(e.request.labels.get(k) == v for k, v in query.labels.items()))
        picked = list(itertools.islice(wanted, limit + 1))
        more = len(picked) > limit
        picked = picked[:limit]
        cursor = f"{iso(picked[-1].created_at)}#{picked[-1].id}" if more and picked else None
        return ExecutionPage(executions=picked, cursor=cursor)

    def _query(
        self, index: str, pk_name: str, pk_value: str, query: ExecutionQuery
    ) -> Iterator[dict[str, Any]]:
        values: dict[str, Any] = {":pk": {"S": pk_value}}
        condition = f"{pk_name} = :pk"
        since = iso(query.since) if query.since else None
        if query.cursor and since:
            condition += " AND list_sk BETWEEN :since AND :cursor"
            values[":since"], values[":cursor"] = {"S": since}, {"S": query.cursor}
        elif query.cursor:
            condition += " AND list_sk < :cursor"
            values[":cursor"] = {"S": query.cursor}
        elif since:
            condition += " AND list_sk >= :since"
            values[":since"] = {"S": since}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": min(query.limit + 1, 500),
        }
        while True:
            with aws_call("list execution records"):
                answer = self._db.query(**kwargs)
            for item in answer.get("Items", []):
                if query.cursor and item["list_sk"]["S"] >= query.cursor:
                    continue  # BETWEEN includes the cursor itself
                yield item
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def resolve_prefix(self, prefix: str, limit: int = 2) -> Sequence[str]:
        if not prefix:
            return []
        with aws_call("resolve execution id"):
            answer = self._db.query(
                TableName=self._table,
                IndexName=BY_ID,
                KeyConditionExpression="list_pk = :pk AND begins_with(id, :prefix)",
                ExpressionAttributeValues={":pk": {"S": LIST_PARTITION}, ":prefix": {"S": prefix}},
                Limit=max(1, limit),
                ProjectionExpression="id",
            )
        return [item["id"]["S"] for item in answer.get("Items", [])][:limit]

    # -- events ---------------------------------------------------------------------------------------
    def append_event(self, execution_id: str, change: StatusChange) -> None:
        sk = f"event#{iso(change.at)}#{time.time_ns():020d}"
        with aws_call("append execution event"):
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": f"exec#{execution_id}"},
                    "sk": {"S": sk},
                    "change": {"S": change.model_dump_json()},
                },
            )

    def events(self, execution_id: str) -> builtins.list[StatusChange]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :ev)",
            "ExpressionAttributeValues": {":pk": {"S": f"exec#{execution_id}"}, ":ev": {"S": "event#"}},
            "ConsistentRead": True,
        }
        changes: builtins.list[StatusChange] = []
        while True:
            with aws_call("read execution events"):
                answer = self._db.query(**kwargs)
            changes.extend(
                StatusChange.model_validate_json(i["change"]["S"]) for i in answer.get("Items", [])
            )
            last = answer.get("LastEvaluatedKey")
            if not last:
                return changes
            kwargs["ExclusiveStartKey"] = last
