"""Flat with size (issue 14): what status, list, the locks' listing and the cost rollups cost on DynamoDB
does not grow with the number of stored runs, counted in API calls and in items DynamoDB reads
(ScannedCount, not the items a filter kept), through botocore's own events; the rollups count each run
once."""

from __future__ import annotations

import collections
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import botocore.awsrequest
import pytest
from aws_test_tools import _event_name, _Raw, timeout_after_success

from runvoy_core.cost.rollups import bucket_of, merge
from runvoy_core.errors import AlreadyExists, ConfigError
from runvoy_core.models import Cost, Execution, ExecutionRequest, Status
from runvoy_core.ports import ExecutionQuery

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ENDED = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
RUNNING = 3  # in flight at any time, however many runs are stored


class Reads:
    """API calls and items read, per operation, seen by botocore's before-call / after-call events."""

    def __init__(self, provider: Any) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.items: collections.Counter[str] = collections.Counter()
        provider.clients.register("before-call.dynamodb", self._call)
        provider.clients.register("after-call.dynamodb", self._read)

    def _call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def _read(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if "ScannedCount" in parsed:  # Query, Scan: what was read, before any filter
            self.items[model.name] += int(parsed["ScannedCount"])
        elif model.name == "BatchGetItem":
            self.items[model.name] += sum(len(v) for v in parsed.get("Responses", {}).values())
        elif model.name == "GetItem":
            self.items[model.name] += 1 if parsed.get("Item") else 0

    def measure(self, action: Any) -> tuple[dict[str, int], dict[str, int], Any]:
        self.calls.clear()
        self.items.clear()
        result = action()
        return dict(self.calls), dict(self.items), result


def run(i: int, count: int) -> Execution:
    """Run ``i`` of ``count``: created a minute apart, ended in one of 24 hours (so the rollups of 30 days
    are 24 hours x a few label sets at any size), every 7th failed, the newest few still running."""
    labels = {"team": "a" if i % 2 else "b"}
    if i in (1, 3, 5):
        labels["tier"] = "gold"
    status = Status.FAILED if i % 7 == 0 else Status.SUCCEEDED
    if i >= count - RUNNING:
        status = Status.RUNNING
    ended = status.is_terminal
    return Execution(
        id=f"{i:06d}{'ab' * 3}",
        provider="aws",
        request=ExecutionRequest(command=f"echo {i}", labels=labels),
        status=status,
        user="dev",
        created_at=T0 + timedelta(minutes=i),
        finished_at=ENDED + timedelta(hours=(i // 2) % 24, minutes=1) if ended else None,
        cost=Cost(
            provider="aws",
            total=Decimal("0.000168666666666666666667"),
            billed_seconds=Decimal(60),
            equivalents={"gcp": Decimal("0.0002")},
        )
        if ended
        else None,
    )


def seeded(aws_config: Any, suffix: str, count: int) -> Any:
    """A provider with its own tables holding ``count`` runs (written in batches: the seeding is not what
    is measured), their rollups, and five locks."""
    from runvoy_aws.provider import create_provider
    from runvoy_aws.setup import AwsSetup

    config = aws_config.model_copy(
        update={"executions_table": f"runvoy-executions-{suffix}", "locks_table": f"runvoy-locks-{suffix}"}
    )
    provider = create_provider(config, None)
    steps = AwsSetup(provider.clients, provider.config, "us-east-1")
    steps._executions_table(False)
    steps._locks_table(False)
    store = provider.store
    db = provider.clients.client("dynamodb")
    items: list[dict[str, Any]] = []
    runs = [run(i, count) for i in range(count)]
    for execution in runs:
        stored = execution.model_copy(update={"version": 1})
        items.append(store._item(stored))
        items.extend(store.label_items(stored))
    for start in range(0, len(items), 25):
        db.batch_write_item(
            RequestItems={
                config.executions_table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
            }
        )
    # what add_to_rollups does per run, summed per bucket: moto copies every table on each transaction
    ended = [e for e in runs if e.status.is_terminal]
    for row in merge(bucket_of(e) for e in ended):
        db.update_item(**store.rollup_update(row))
    markers = [store.counted_item(e.id, bucket_of(e)) for e in ended]
    for start in range(0, len(markers), 25):
        db.batch_write_item(
            RequestItems={
                config.executions_table: [{"PutRequest": {"Item": i}} for i in markers[start : start + 25]]
            }
        )
    assert store.add_to_rollups(ended[0]) is False
    for name in ("etl", "deploy", "db#1", "db#2", "nightly"):
        provider.locks.create_if_absent(name, {"name": name})
    # --on-conflict queue keeps one entry per queued run: one run in ten queued for "etl"
    tickets = [
        provider.locks._item(key, {"ticket": n}, 1)
        for n, key in enumerate(["etl~queue", *(f"etl~{n}" for n in range(count // 10))])
    ]
    for start in range(0, len(tickets), 25):
        db.batch_write_item(
            RequestItems={
                config.locks_table: [{"PutRequest": {"Item": i}} for i in tickets[start : start + 25]]
            }
        )
    return provider


def costs(provider: Any, count: int) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
    store, reads = provider.store, Reads(provider)
    newest = f"{count - 1:06d}"
    measured: dict[str, Any] = {}

    def status() -> Execution | None:
        (full,) = store.resolve_prefix(newest, limit=2)
        return store.get(full)

    actions = {
        "status": status,
        "list": lambda: store.list(ExecutionQuery()),
        "list failed": lambda: store.list(ExecutionQuery(statuses=frozenset({Status.FAILED}))),
        "list active": lambda: store.list(
            ExecutionQuery(statuses=frozenset({Status.PENDING, Status.STARTING, Status.RUNNING}))
        ),
        "list since": lambda: store.list(ExecutionQuery(since=T0 + timedelta(minutes=count - 80))),
        "list label": lambda: store.list(ExecutionQuery(labels={"team": "a"})),
        "list rare label": lambda: store.list(ExecutionQuery(labels={"tier": "gold"})),
        "list label and since": lambda: store.list(
            ExecutionQuery(labels={"team": "b"}, since=T0 + timedelta(minutes=count - 60))
        ),
        "list running with label": lambda: store.list(
            ExecutionQuery(statuses=frozenset({Status.RUNNING}), labels={"team": "a"})
        ),
        "second page": lambda: store.list(ExecutionQuery(cursor=store.list(ExecutionQuery()).cursor)),
        "list_locks": provider.locks.list_locks,
        "rollups 30 days": lambda: store.rollups(ENDED + timedelta(days=1) - timedelta(days=30)),
    }
    store.rollups(T0)  # the layout check is once per process, not part of a report
    for name, action in actions.items():
        calls, items, result = reads.measure(action)
        measured[name] = (calls, items)
        if name == "list_locks":
            assert [n for n, _ in result] == ["db#1", "db#2", "deploy", "etl", "nightly"]
        elif name == "status":
            assert result is not None and result.status is Status.RUNNING
        elif name == "rollups 30 days":
            assert len(result) == 24 * 2 + 3  # 24 hours x {team=a, team=b}; 3 gold runs' own buckets
        elif name.startswith("list"):
            assert result.executions, name
    return measured


def test_status_list_locks_and_rollups_read_as_much_with_100_as_with_2000_runs(aws_config) -> None:
    small = seeded(aws_config, "small", 100)
    large = seeded(aws_config, "large", 2000)
    try:
        at_100, at_2000 = costs(small, 100), costs(large, 2000)
    finally:
        small.close()
        large.close()
    # the same calls at both sizes; items read bounded by the page (50, plus one to know there is more),
    # which 100 runs do not always fill (14 failed runs, 50 of team a)
    assert {name: calls for name, (calls, _) in at_100.items()} == {
        name: calls for name, (calls, _) in at_2000.items()
    }
    read = {name: sum(items.values()) for name, (_, items) in at_2000.items()}
    assert all(sum(at_100[name][1].values()) <= read[name] for name in read)
    page = 51
    assert read == {
        "status": 2,  # resolve_prefix (Limit 2), GetItem
        "list": page,
        "list failed": page,
        "list active": RUNNING,
        "list since": page,
        "list label": page + page,  # by-label keys, then the records with one BatchGetItem
        "list rare label": 3 + 3,
        "list label and since": 30 + 30,
        "list running with label": RUNNING,  # the in-flight runs, labels checked on them
        "second page": page + page,
        "list_locks": 5 + 5,  # names from by-kind, then the locks with one consistent BatchGetItem
        "rollups 30 days": 24 * 2 + 3,
    }
    assert all("Scan" not in calls for calls, _ in at_2000.values())


def ended(i: int, *, total: str = "0.10", hour: int = 0, **labels: str) -> Execution:
    return Execution(
        id=f"r{i:05d}abcdef",
        provider="aws",
        request=ExecutionRequest(command="true", labels=labels),
        status=Status.SUCCEEDED,
        user="dev",
        created_at=ENDED + timedelta(hours=hour),
        finished_at=ENDED + timedelta(hours=hour, minutes=30),
        cost=Cost(
            provider="aws",
            total=Decimal(total),
            billed_seconds=Decimal("61.5"),
            equivalents={"gcp": Decimal("0.07"), "azure": Decimal("0.08")},
        ),
    )


def test_rollups_sum_each_run_once_per_hour_bucket(data_provider) -> None:
    store = data_provider.store
    # no float on the way (17 digits): DynamoDB keeps 38 significant digits, moto's arithmetic 28
    precise = "0.000012345678901234567890123456"
    runs = [
        ended(1, team="a"),
        ended(2, team="a"),
        ended(3, total=precise, team="b"),
        ended(4, hour=1, team="a"),
        ended(5, hour=5, team="a"),
    ]
    assert [store.add_to_rollups(e) for e in runs] == [True] * 5
    assert [store.add_to_rollups(e) for e in runs] == [False] * 5  # a retry, a second watcher, reconcile
    assert sorted(store.rollups(ENDED), key=lambda r: (r.hour, r.labels)) == sorted(
        merge(bucket_of(e) for e in runs), key=lambda r: (r.hour, r.labels)
    )
    first = {r.labels: r for r in store.rollups(ENDED, until=ENDED + timedelta(hours=1))}
    assert set(first) == {(("team", "a"),), (("team", "b"),)}
    assert first[(("team", "a"),)].runs == 2 and first[(("team", "a"),)].total == Decimal("0.20")
    assert first[(("team", "a"),)].equivalents == {"gcp": Decimal("0.14"), "azure": Decimal("0.16")}
    assert first[(("team", "a"),)].billed_seconds == Decimal("123.0")
    assert first[(("team", "b"),)].total == Decimal(precise)
    # ``until`` in the middle of an hour keeps that hour's bucket; ``since`` counts from its hour's start
    assert {
        r.hour.hour
        for r in store.rollups(ENDED + timedelta(minutes=59), until=ENDED + timedelta(hours=1, minutes=1))
    } == {0, 1}
    assert [r.hour.hour for r in store.rollups(ENDED + timedelta(hours=4, minutes=59))] == [5]
    assert store.rollups(ENDED + timedelta(hours=2), until=ENDED + timedelta(hours=2)) == []


def test_an_add_whose_answer_was_lost_is_not_counted_again(data_provider) -> None:
    store = data_provider.store
    db = data_provider.clients.client("dynamodb")
    # the transaction reaches DynamoDB, the client times out and botocore sends it again
    done = timeout_after_success(db, "TransactWriteItems")
    store.add_to_rollups(ended(1))
    assert done == [1]
    assert store.add_to_rollups(ended(1)) is False
    (row,) = store.rollups(ENDED)
    assert row.runs == 1 and row.total == Decimal("0.10")


def test_a_transaction_conflict_on_a_busy_bucket_is_retried(data_provider) -> None:
    store = data_provider.store
    db = data_provider.clients.client("dynamodb")
    conflicts = [0]

    def conflict(request: Any, **_: Any) -> Any:
        if conflicts[0] >= 2:
            return None
        conflicts[0] += 1
        body = {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
            "[None, TransactionConflict]",
            "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
        }
        return botocore.awsrequest.AWSResponse(
            request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(json.dumps(body).encode())
        )

    db.meta.events.register(_event_name(db, "TransactWriteItems"), conflict)
    assert store.add_to_rollups(ended(1)) is True
    assert conflicts == [2]
    (row,) = store.rollups(ENDED)
    assert row.runs == 1


def test_label_listing_checks_the_records_and_pages_with_the_cursor(data_provider) -> None:
    store = data_provider.store
    for i in range(6):
        store.create(ended(i, hour=i, team="a" if i % 2 else "b", env="prod" if i < 4 else "dev"))
    # a create that loses to an existing id leaves label items that point at another run's record
    with pytest.raises(AlreadyExists):
        store.create(ended(1, hour=1, team="z"))
    with pytest.raises(AlreadyExists):  # ...or at the same labels, at a later place in the listing
        store.create(ended(3, hour=9, team="a", env="prod"))
    assert store.list(ExecutionQuery(labels={"team": "z"})).executions == []
    page = store.list(ExecutionQuery(labels={"team": "a"}, limit=2))
    assert [e.id[:6] for e in page.executions] == ["r00005", "r00003"]
    rest = store.list(ExecutionQuery(labels={"team": "a"}, limit=2, cursor=page.cursor))
    assert [e.id[:6] for e in rest.executions] == ["r00001"] and rest.cursor is None
    both = store.list(ExecutionQuery(labels={"team": "a", "env": "prod"}))
    assert [e.id[:6] for e in both.executions] == ["r00003", "r00001"]
    since = store.list(ExecutionQuery(labels={"env": "prod"}, since=ENDED + timedelta(hours=2)))
    assert [e.id[:6] for e in since.executions] == ["r00003", "r00002"]
    done = store.list(ExecutionQuery(labels={"team": "b"}, statuses=frozenset({Status.SUCCEEDED})))
    assert [e.id[:6] for e in done.executions] == ["r00004", "r00002", "r00000"]


OLD_LAYOUT_INDEXES = ("by-created", "by-status", "by-id")


def old_table(provider: Any) -> None:
    """The executions table as runvoy 0.x's setup made it: no by-label index, no layout marker."""
    from runvoy_aws.store import table_definition

    definition = table_definition(provider.config.executions_table)
    definition["GlobalSecondaryIndexes"] = [
        i for i in definition["GlobalSecondaryIndexes"] if i["IndexName"] in OLD_LAYOUT_INDEXES
    ]
    definition["AttributeDefinitions"] = [
        a for a in definition["AttributeDefinitions"] if a["AttributeName"] != "label_pk"
    ]
    provider.clients.client("dynamodb").create_table(**definition)


def test_setup_upgrades_an_older_table_and_the_store_says_so_until_then(aws_config) -> None:
    from runvoy_aws.provider import create_provider

    provider = create_provider(aws_config, None)
    try:
        old_table(provider)
        db = provider.clients.client("dynamodb")
        runs = [ended(1, team="a"), ended(2, hour=3, team="b")]
        for execution in runs:  # stored by the old version: records only
            db.put_item(
                TableName="runvoy-executions",
                Item=provider.store._item(execution.model_copy(update={"version": 1})),
            )
        with pytest.raises(ConfigError, match="by-label") as missing:
            provider.store.list(ExecutionQuery(labels={"team": "a"}))
        assert "runvoy setup --provider aws" in (missing.value.hint or "")
        with pytest.raises(ConfigError, match="predates cost rollups"):
            provider.store.rollups(ENDED)

        steps = {s["resource"]: s for s in provider.setup(dry_run=True)}
        step = steps["DynamoDB table runvoy-executions"]
        assert step["action"] == "would update" and "by-label" in step["detail"]
        assert "by-label" not in str(db.describe_table(TableName="runvoy-executions"))

        steps = {s["resource"]: s for s in provider.setup(dry_run=False)}
        step = steps["DynamoDB table runvoy-executions"]
        assert step["action"] == "updated", step
        assert "counted 2 in the cost rollups" in step["detail"]
        assert [e.id for e in provider.store.list(ExecutionQuery(labels={"team": "a"})).executions] == [
            runs[0].id
        ]
        assert sum(r.runs for r in provider.store.rollups(ENDED)) == 2

        again = {s["resource"]: s for s in provider.setup(dry_run=False)}
        assert again["DynamoDB table runvoy-executions"]["action"] == "exists"
    finally:
        provider.close()


@pytest.fixture
def rv(moto, sim):  # type: ignore[no-untyped-def]
    from aws_test_tools import config_dict

    from runvoy_core.api import Runvoy

    client = Runvoy(provider="aws", **config_dict(moto))
    client.provider.compute.start_retry_delay = 0.01
    client.provider.setup(dry_run=False)
    yield client
    client.close()


def test_a_run_on_the_simulator_leaves_its_cost_in_the_rollups_and_the_report(rv) -> None:
    from runvoy_core.cost.report import cost_report

    execution = rv.run("echo hi", labels={"team": "a"})
    assert execution.status is Status.SUCCEEDED and execution.cost is not None
    store = rv.provider.store
    (row,) = store.rollups(execution.created_at)
    assert row.runs == 1 and row.total == execution.cost.total and row.labels == (("team", "a"),)
    assert store.add_to_rollups(rv.get(execution.id)) is False  # the runner counted it already
    reads = Reads(rv.provider)
    _, items, report = reads.measure(lambda: cost_report([store], execution.created_at, "label"))
    assert report.total == execution.cost.total
    assert "Scan" not in items and items.get("BatchGetItem", 0) == 0
    assert [e.id for e in store.list(ExecutionQuery(labels={"team": "a"})).executions] == [execution.id]


def test_list_locks_reads_locks_and_slots_consistently_never_queue_entries(data_provider) -> None:
    locks = data_provider.locks
    for name in ("etl", "etl~queue", "etl~1", "db#1", "db#2"):
        assert locks.create_if_absent(name, {"name": name})
    current = locks.read("db#1")
    assert locks.replace_if_version("db#1", {"name": "db#1", "n": 2}, current.version)
    listed = dict(locks.list_locks())
    assert sorted(listed) == ["db#1", "db#2", "etl"]
    assert listed["db#1"] == locks.read("db#1") and listed["db#1"].value["n"] == 2
    assert {n for n, _ in locks.list()} == {"etl", "etl~queue", "etl~1", "db#1", "db#2"}  # the contract


def test_setup_adds_the_locks_index_to_an_older_locks_table_and_tags_its_locks(aws_config) -> None:
    from runvoy_aws.provider import create_provider
    from runvoy_aws.register import table_definition

    provider = create_provider(aws_config, None)
    try:
        definition = table_definition("runvoy-locks")
        del definition["GlobalSecondaryIndexes"]
        definition["AttributeDefinitions"] = definition["AttributeDefinitions"][:1]
        db = provider.clients.client("dynamodb")
        db.create_table(**definition)
        for name in ("etl", "etl~queue", "db#1"):  # as the older version wrote them: no kind
            db.put_item(
                TableName="runvoy-locks",
                Item={"name": {"S": name}, "value": {"S": "{}"}, "version": {"N": "3"}},
            )
        with pytest.raises(ConfigError, match="by-kind"):
            provider.locks.list_locks()
        dry = {s["resource"]: s for s in provider.setup(dry_run=True)}["DynamoDB table runvoy-locks"]
        assert dry["action"] == "would update" and "tag 2 locks" in dry["detail"], dry
        done = {s["resource"]: s for s in provider.setup(dry_run=False)}["DynamoDB table runvoy-locks"]
        assert done["action"] == "updated" and "tagged 2 locks" in done["detail"], done
        assert [n for n, _ in provider.locks.list_locks()] == ["db#1", "etl"]
        again = {s["resource"]: s for s in provider.setup(dry_run=False)}["DynamoDB table runvoy-locks"]
        assert again["action"] == "exists"
    finally:
        provider.close()


def test_locks_list_reads_the_locks_index_never_the_queue_tickets(data_provider) -> None:
    """`runvoy locks list` (LockManager.list) uses the register's list_locks: no Scan of every entry."""
    from runvoy_core.locks import LockManager

    locks = data_provider.locks
    assert locks.create_if_absent("etl", {"name": "etl", "state": "held", "fence": 1})
    for n in range(30):  # one ticket per run that ever queued
        assert locks.create_if_absent(f"etl~{n}", {"holder": {}})
    reads = Reads(data_provider)
    calls, items, listed = reads.measure(lambda: LockManager(locks).list())
    assert [record.name for record, _ in listed] == ["etl"]
    assert "Scan" not in calls, calls
    assert items.get("BatchGetItem", 0) == 1, items
