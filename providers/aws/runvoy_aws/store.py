"""Execution records, their event history and cost rollups in one DynamoDB table.

Items (``pk``, ``sk``):
- ``exec#<id>`` / ``record``: the record as JSON (``body``), its ``version`` (conditional writes), and the
  index keys below. A record over ``INLINE_LIMIT`` bytes goes to S3 (``records/<id>.json``) and the item
  keeps ``body_key``.
- ``exec#<id>`` / ``event#<at>#<ns>``: one status change each, read back in order with a Query.
- ``exec#<id>`` / ``label#<hash>``: one per label of the run, written before the record, never changed
  (labels and creation time are fixed): the ``by-label`` index entries of the run.
- ``exec#<id>`` / ``rollup``: the marker that this run's cost is counted in its rollup bucket.
- ``rollup`` / ``<bucket_key>``: one hour bucket of ended runs' costs (``runvoy_core.cost.rollups``),
  counters updated with ADD; ``rollups(since)`` is one Query from ``hour_key(since)`` on.
- ``meta`` / ``layout``: the layout version setup brought the table to (2: labels and rollups indexed).
- ``doc#<namespace>`` / ``<key>``: one document of the team service (``runvoy_aws.documents``).

Indexes (every listing is a Query on a key condition; nothing is read and then thrown away, except the
label check of a combined filter, see ``list``):
- ``by-created``: ``list_pk`` = "exec" (one constant partition), ``list_sk`` = "<created_at>#<id>":
  newest first with ScanIndexForward=False; the cursor is the last ``list_sk`` returned. Projection ALL.
- ``by-status``: ``status_pk`` = "status#<STATUS>", ``list_sk``: one query per wanted status, merged.
- ``by-id``: ``list_pk`` = "exec", ``id``: ``resolve_prefix`` is ``begins_with(id, :prefix)``.
- ``by-label``: ``label_pk`` = "label#<key>=<value>", ``list_sk``, on the label items; KEYS_ONLY, the page's
  records come with one BatchGetItem.
Only record items carry ``list_pk``/``status_pk`` and only label items ``label_pk``: the indexes are sparse.
One constant partition is fine at runvoy's write rates (far below a partition's 1,000 writes/s); the
hot path (create, get, update, events) touches only the base table.
"""

from __future__ import annotations

import builtins
import hashlib
import heapq
import itertools
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from runvoy_aws.clients import aws_call, bexc, error_code
from runvoy_aws.documents import DynamoDocuments
from runvoy_core.cost.rollups import RollupRow, bucket_key, bucket_of, floor_hour, hour_key, row_from_dict
from runvoy_core.errors import AlreadyExists, ConfigError, NotFound, TransientProviderError, VersionConflict
from runvoy_core.models import Execution, StatusChange
from runvoy_core.ports import ExecutionPage, ExecutionQuery
from runvoy_core.ratelimit import Retryable, RetryPolicy, retry_call

LIST_PARTITION = "exec"
RECORD_SK = "record"
INLINE_LIMIT = 300_000  # DynamoDB items are capped at 400 KB
BY_CREATED = "by-created"
BY_STATUS = "by-status"
BY_ID = "by-id"
BY_LABEL = "by-label"
ROLLUP_PARTITION = "rollup"
COUNTED_SK = "rollup"
META_KEY = {"pk": {"S": "meta"}, "sk": {"S": "layout"}}
LAYOUT = 2
"""1: records, events, by-created/by-status/by-id. 2: + label items, by-label, cost rollups."""
BATCH_GET_MAX = 100  # BatchGetItem's limit of keys per call
BATCH_WRITE_MAX = 25  # BatchWriteItem's limit of requests per call
BATCH_ATTEMPTS = 8
ROLLUP_POLICY = RetryPolicy(attempts=8, base_delay=0.05, max_delay=1.0, total=10.0)
"""Transactions on one bucket conflict when runs of the same hour end together: retried after a jitter."""
_NUMBER = Context(prec=38)  # DynamoDB numbers keep 38 significant digits


def iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def list_sk(execution: Execution) -> str:
    return f"{iso(execution.created_at)}#{execution.id}"


def label_pk(key: str, value: str) -> str:
    # label keys never contain "=" (docs/inputs.md), so key=value is unambiguous
    return f"label#{key}={value}"


def number(value: Decimal) -> dict[str, str]:
    """A DynamoDB number: plain digits (no exponent, which moto refuses), at most 38 significant."""
    return {"N": format(_NUMBER.plus(Decimal(value)), "f")}


def index_definition(name: str, pk: str, sk: str, projection: str = "ALL") -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": pk, "KeyType": "HASH"},
            {"AttributeName": sk, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": projection},
    }


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments (used by setup)."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": "S"}
            for a in ("pk", "sk", "list_pk", "list_sk", "status_pk", "id", "label_pk")
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            index_definition(BY_CREATED, "list_pk", "list_sk"),
            index_definition(BY_STATUS, "status_pk", "list_sk"),
            index_definition(BY_ID, "list_pk", "id"),
            index_definition(BY_LABEL, "label_pk", "list_sk", "KEYS_ONLY"),
        ],
    }


def missing_index(exc: BaseException) -> bool:
    """DynamoDB's answer to a Query on an index the table lacks or is still building (moto says
    ResourceNotFoundException, AWS ValidationException)."""
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).lower()
    return error_code(exc) in ("ValidationException", "ResourceNotFoundException") and "index" in message


def _outdated(message: str) -> ConfigError:
    return ConfigError(message, hint="upgrade the table (once) with: runvoy setup --provider aws")


class DynamoStore(DynamoDocuments):
    def __init__(self, dynamodb: Any, table: str, s3_factory: Any = None, bucket: str | None = None) -> None:
        self._db = dynamodb
        self._table = table
        self._s3_factory = s3_factory
        self._bucket = bucket
        self._layout_checked = False

    # -- records --------------------------------------------------------------------------------------
    def create(self, execution: Execution) -> Execution:
        stored = execution.model_copy(update={"version": 1})
        # the label items go first: a record is never listed without them, and the items of a create that
        # then fails point at no record (or at one whose labels differ), which listings check and skip
        self._batch_write(self.label_items(stored), "index execution labels")
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
        item: dict[str, Any] = {
            "pk": {"S": f"exec#{execution.id}"},
            "sk": {"S": RECORD_SK},
            "id": {"S": execution.id},
            "version": {"N": str(execution.version)},
            "status": {"S": str(execution.status)},
            "list_pk": {"S": LIST_PARTITION},
            "list_sk": {"S": list_sk(execution)},
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

    @staticmethod
    def label_items(execution: Execution) -> builtins.list[dict[str, Any]]:
        """The ``by-label`` entries of a run (also written by setup for runs stored before layout 2). The
        sort key hashes label and creation time: a create that loses to an existing id (a tombstone, a
        retry) adds entries next to the record's own instead of overwriting them, and listings skip them
        (the record's labels or ``list_sk`` differ); a long label value stays under the 1 kB key limit."""
        position = list_sk(execution)
        return [
            {
                "pk": {"S": f"exec#{execution.id}"},
                "sk": {"S": "label#" + hashlib.sha256(f"{key}={value}#{position}".encode()).hexdigest()[:32]},
                "label_pk": {"S": label_pk(key, value)},
                "list_sk": {"S": position},
            }
            for key, value in sorted(execution.request.labels.items())
        ]

    def _batch_write(self, items: builtins.list[dict[str, Any]], action: str) -> None:
        """Unconditional puts, 25 a call; what DynamoDB leaves unprocessed (throttling) is sent again."""
        for start in range(0, len(items), BATCH_WRITE_MAX):
            pending: builtins.list[dict[str, Any]] = [
                {"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_MAX]
            ]
            for attempt in range(BATCH_ATTEMPTS):
                with aws_call(action):
                    answer = self._db.batch_write_item(RequestItems={self._table: pending})
                pending = answer.get("UnprocessedItems", {}).get(self._table, [])
                if not pending:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            else:
                raise TransientProviderError(f"{action}: DynamoDB left {len(pending)} writes unprocessed")

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
        """One index answers each filter with a key condition: ``since`` and the cursor bound ``list_sk``
        on every index, statuses use ``by-status``, a label ``by-label``. Combined, one index is queried
        and the rest checked on the records: statuses that are all active (a set bounded by how many runs
        are in flight, not by history) with ``by-status``, otherwise the first label's ``by-label``."""
        limit = max(1, query.limit)
        labels = sorted(query.labels.items())
        statuses = query.statuses
        found: Iterator[Execution]
        if statuses and (not labels or not any(s.is_terminal for s in statuses)):
            sources = [
                self._query(BY_STATUS, "status_pk", f"status#{status}", query) for status in sorted(statuses)
            ]
            merged: Iterator[dict[str, Any]] = heapq.merge(
                *sources, key=lambda item: item["list_sk"]["S"], reverse=True
            )
            found = (self._from_item(item) for item in merged)
        elif labels:
            found = self._labelled(label_pk(*labels[0]), query)
        else:
            found = (
                self._from_item(item) for item in self._query(BY_CREATED, "list_pk", LIST_PARTITION, query)
            )
        wanted = (
            e
            for e in found
            if (not statuses or e.status in statuses) and all(e.request.labels.get(k) == v for k, v in labels)
        )
        picked = builtins.list(itertools.islice(wanted, limit + 1))
        more = len(picked) > limit
        picked = picked[:limit]
        cursor = list_sk(picked[-1]) if more and picked else None
        return ExecutionPage(executions=picked, cursor=cursor)

    def _query(
        self,
        index: str,
        pk_name: str,
        pk_value: str,
        query: ExecutionQuery,
        page: int = 500,
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
            "Limit": min(max(1, query.limit) + 1, page),
        }
        while True:
            with aws_call("list execution records"):
                try:
                    answer = self._db.query(**kwargs)
                except bexc.ClientError as exc:
                    if missing_index(exc):
                        raise _outdated(
                            f"the DynamoDB table {self._table} lacks the index {index} (or is still building it)"
                        ) from None
                    raise
            for item in answer.get("Items", []):
                if query.cursor and item["list_sk"]["S"] >= query.cursor:
                    continue  # BETWEEN includes the cursor itself
                yield item
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _labelled(self, pk_value: str, query: ExecutionQuery) -> Iterator[Execution]:
        """The records of one label, newest first: a page of ``by-label`` keys, then its records."""
        keys = self._query(BY_LABEL, "label_pk", pk_value, query, page=BATCH_GET_MAX)
        while True:
            chunk = builtins.list(itertools.islice(keys, min(max(1, query.limit) + 1, BATCH_GET_MAX)))
            if not chunk:
                return
            records = self._batch_get([item["pk"]["S"] for item in chunk])
            for item in chunk:
                record = records.get(item["pk"]["S"])
                # a label item whose create failed has no record, or one that is not this run
                if record is not None and list_sk(record) == item["list_sk"]["S"]:
                    yield record

    def _batch_get(self, pks: builtins.list[str]) -> dict[str, Execution]:
        request: dict[str, Any] = {
            self._table: {"Keys": [{"pk": {"S": pk}, "sk": {"S": RECORD_SK}} for pk in dict.fromkeys(pks)]}
        }
        found: dict[str, Execution] = {}
        for attempt in range(BATCH_ATTEMPTS):
            with aws_call("read execution records"):
                answer = self._db.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(self._table, []):
                found[item["pk"]["S"]] = self._from_item(item)
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(1.0, 0.05 * 2**attempt))
        raise TransientProviderError("read execution records: DynamoDB left keys unprocessed")

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

    # -- cost rollups (runvoy_core.ports.optional.CostRollups) -------------------------------------------
    def add_to_rollups(self, execution: Execution) -> bool:
        """One transaction: the run's ``rollup`` marker (only if absent) and ADDs on its bucket, so a
        retry, a second watcher or reconcile never counts a run twice; a marker already there is seen with
        one read first. Two items: far below a transaction's 100 items / 4 MB (a bucket item with 256 long
        labels stays under 100 kB)."""
        marker = {"pk": {"S": f"exec#{execution.id}"}, "sk": {"S": COUNTED_SK}}
        with aws_call("read the cost rollup marker"):
            # reconcile offers every ended run of weeks again: a read, not a cancelled transaction (which
            # costs its writes, and which moto serves by copying every table)
            if self._db.get_item(TableName=self._table, Key=marker, ConsistentRead=True).get("Item"):
                return False
        row = bucket_of(execution)
        items = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self.counted_item(execution.id, row),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": self.rollup_update(row)},
        ]

        def attempt() -> bool:
            try:
                self._db.transact_write_items(TransactItems=items)
            except bexc.ClientError as exc:
                if error_code(exc) == "TransactionCanceledException" and _reasons(exc)[:1] == [
                    "ConditionalCheckFailed"
                ]:
                    return False
                raise
            return True

        with aws_call(f"count execution {execution.id} in the cost rollups"):
            return retry_call(
                attempt, what="count a run in the cost rollups", classify=_conflict, policy=ROLLUP_POLICY
            )

    def counted_item(self, execution_id: str, row: RollupRow) -> dict[str, Any]:
        """The marker that ``execution_id`` is counted (in the bucket ``row`` belongs to)."""
        return {
            "pk": {"S": f"exec#{execution_id}"},
            "sk": {"S": COUNTED_SK},
            "bucket": {"S": bucket_key(row)},
        }

    def rollup_update(self, row: RollupRow) -> dict[str, Any]:
        """UpdateItem arguments adding ``row`` (one run's, or several runs' summed) to its bucket."""
        names = {"#runs": "runs", "#billed": "billed_seconds", "#total": "total", "#ident": "ident"}
        values: dict[str, Any] = {
            ":runs": {"N": str(row.runs)},
            ":billed": number(row.billed_seconds),
            ":total": number(row.total),
            ":ident": {"S": _identity_json(row)},
        }
        adds = ["#runs :runs", "#billed :billed", "#total :total"]
        for n, (provider, amount) in enumerate(sorted(row.equivalents.items())):
            # ADD works on top-level attributes only: one ``eq:<provider>`` number each
            names[f"#e{n}"], values[f":e{n}"] = f"eq:{provider}", number(amount)
            adds.append(f"#e{n} :e{n}")
        return {
            "TableName": self._table,
            "Key": {"pk": {"S": ROLLUP_PARTITION}, "sk": {"S": bucket_key(row)}},
            "UpdateExpression": f"SET #ident = :ident ADD {', '.join(adds)}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def rollups(self, since: datetime, until: datetime | None = None) -> builtins.list[RollupRow]:
        self._check_layout()
        condition, values = "pk = :pk AND sk >= :since", {":since": {"S": hour_key(since)}}
        if until is not None:
            moment = until if until.tzinfo else until.replace(tzinfo=UTC)
            end = floor_hour(moment)
            if end < moment:
                end += timedelta(hours=1)  # a bucket counts when its hour starts before ``until``
            if end <= floor_hour(since):
                return []
            # every key of hour h is "<h>-<hash>", above "<h>" itself: BETWEEN stops right before ``end``
            condition = "pk = :pk AND sk BETWEEN :since AND :until"
            values[":until"] = {"S": hour_key(end)}
        values[":pk"] = {"S": ROLLUP_PARTITION}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        rows: builtins.list[RollupRow] = []
        while True:
            with aws_call("read cost rollups"):
                answer = self._db.query(**kwargs)
            rows.extend(_row(item) for item in answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last:
                return rows
            kwargs["ExclusiveStartKey"] = last

    def _check_layout(self) -> None:
        """Buckets are complete only on a table setup brought to layout 2 (it counts the runs stored
        before): read once per store, so an old table is an error, not a silently short report."""
        if self._layout_checked:
            return
        with aws_call("read the executions table's layout"):
            item = self._db.get_item(TableName=self._table, Key=META_KEY, ConsistentRead=True).get("Item")
        if item is None or int(item.get("layout", {}).get("N", "0")) < LAYOUT:
            raise _outdated(f"the DynamoDB table {self._table} predates cost rollups")
        self._layout_checked = True

    def mark_layout(self) -> None:
        """Record that every item of layout ``LAYOUT`` exists (setup, after creating or upgrading)."""
        with aws_call("record the executions table's layout"):
            self._db.put_item(TableName=self._table, Item={**META_KEY, "layout": {"N": str(LAYOUT)}})

    def layout(self) -> int:
        with aws_call("read the executions table's layout"):
            item = self._db.get_item(TableName=self._table, Key=META_KEY, ConsistentRead=True).get("Item")
        return int(item["layout"]["N"]) if item and "layout" in item else 1

    def stored_records(self) -> Iterator[Execution]:
        """Every record, with a Scan: only for setup's one-time upgrade of a table to layout 2."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :record",
            "ExpressionAttributeValues": {":record": {"S": RECORD_SK}},
        }
        while True:
            with aws_call("read every execution record (upgrade)"):
                answer = self._db.scan(**kwargs)
            for item in answer.get("Items", []):
                yield self._from_item(item)
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def index_labels(self, executions: Iterable[Execution]) -> None:
        """Write the label items of runs stored before layout 2 (idempotent puts)."""
        self._batch_write([i for e in executions for i in self.label_items(e)], "index execution labels")


def _identity_json(row: RollupRow) -> str:
    return json.dumps(
        {
            "hour": row.hour.isoformat(),
            "provider": row.provider,
            "user": row.user,
            "lock": row.lock,
            "labels": [list(pair) for pair in row.labels],
            "currency": row.currency,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def _row(item: dict[str, Any]) -> RollupRow:
    data = json.loads(item["ident"]["S"])
    data["runs"] = int(item["runs"]["N"])
    data["billed_seconds"] = Decimal(item["billed_seconds"]["N"])
    data["total"] = Decimal(item["total"]["N"])
    data["equivalents"] = {
        name[len("eq:") :]: Decimal(value["N"]) for name, value in item.items() if name.startswith("eq:")
    }
    return row_from_dict(data)


def _reasons(exc: BaseException) -> builtins.list[str]:
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    return [str(r.get("Code") or "None") for r in reasons]


def _conflict(exc: BaseException) -> Retryable | None:
    """Another transaction on the same bucket (or throttling inside the transaction): try again."""
    if error_code(exc) == "TransactionCanceledException" and any(
        code in ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded")
        for code in _reasons(exc)
    ):
        return Retryable("transaction conflict on a cost rollup bucket", throttled=False)
    return None
