"""Execution records in DynamoDB: conditional create, versioned updates, GSI listings, prefixes, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aws_test_tools import CallCounter

from runvoy_core.errors import AlreadyExists, NotFound, VersionConflict
from runvoy_core.models import Execution, ExecutionRequest, Status, StatusChange
from runvoy_core.ports import ExecutionQuery

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def record(i: int, status: Status = Status.SUCCEEDED, **labels: str) -> Execution:
    return Execution(
        id=f"{i:04d}aaaaaaaa",
        provider="aws",
        request=ExecutionRequest(command=f"echo {i}", labels=labels),
        status=status,
        created_at=T0 + timedelta(minutes=i),
    )


def test_create_get_update_with_versions(data_provider) -> None:
    store = data_provider.store
    created = store.create(record(1, Status.PENDING))
    assert created.version == 1
    with pytest.raises(AlreadyExists):
        store.create(record(1))
    got = store.get(created.id)
    assert got is not None and got.version == 1 and got.request.command == "echo 1"
    got.status = Status.RUNNING
    updated = store.update(got)
    assert updated.version == 2
    with pytest.raises(VersionConflict):
        store.update(got)  # still says version 1
    assert store.get(created.id).status is Status.RUNNING
    with pytest.raises(NotFound):
        store.update(record(99))
    assert store.get("nothere00000") is None


def test_list_is_newest_first_with_cursor_and_status_filter_without_scan(data_provider) -> None:
    store = data_provider.store
    statuses = [
        Status.SUCCEEDED,
        Status.FAILED,
        Status.RUNNING,
        Status.FAILED,
        Status.SUCCEEDED,
        Status.PENDING,
    ]
    for i, status in enumerate(statuses):
        store.create(record(i, status, team="a" if i % 2 else "b"))
    counter = CallCounter()
    counter.attach_provider(data_provider)

    page = store.list(ExecutionQuery(limit=4))
    assert [e.id[:4] for e in page.executions] == ["0005", "0004", "0003", "0002"]
    rest = store.list(ExecutionQuery(limit=4, cursor=page.cursor))
    assert [e.id[:4] for e in rest.executions] == ["0001", "0000"] and rest.cursor is None

    failed = store.list(ExecutionQuery(statuses=frozenset({Status.FAILED})))
    assert [e.id[:4] for e in failed.executions] == ["0003", "0001"]
    active = store.list(ExecutionQuery(statuses=frozenset({Status.RUNNING, Status.PENDING}), limit=1))
    assert [e.id[:4] for e in active.executions] == ["0005"]
    more = store.list(
        ExecutionQuery(statuses=frozenset({Status.RUNNING, Status.PENDING}), limit=1, cursor=active.cursor)
    )
    assert [e.id[:4] for e in more.executions] == ["0002"] and more.cursor is None

    since = store.list(ExecutionQuery(since=T0 + timedelta(minutes=4)))
    assert [e.id[:4] for e in since.executions] == ["0005", "0004"]
    labelled = store.list(ExecutionQuery(labels={"team": "a"}, limit=2))
    assert [e.id[:4] for e in labelled.executions] == ["0005", "0003"]
    assert counter.of("Scan") == 0 and counter.of("Query") > 0


def test_resolve_prefix_uses_the_id_index(data_provider) -> None:
    store = data_provider.store
    for i in (1, 2, 12):
        store.create(record(i))
    assert store.resolve_prefix("0001") == ["0001aaaaaaaa"]
    assert sorted(store.resolve_prefix("001", limit=5)) == ["0012aaaaaaaa"]
    assert len(store.resolve_prefix("00", limit=2)) == 2
    assert store.resolve_prefix("ffff") == []


def test_events_come_back_in_order(data_provider) -> None:
    store = data_provider.store
    store.create(record(1))
    for n, status in enumerate([Status.PENDING, Status.STARTING, Status.RUNNING, Status.SUCCEEDED]):
        store.append_event(
            "0001aaaaaaaa", StatusChange(status=status, event=status.value.lower(), detail={"n": n}, at=T0)
        )
    events = store.events("0001aaaaaaaa")
    assert [e.status for e in events] == [Status.PENDING, Status.STARTING, Status.RUNNING, Status.SUCCEEDED]
    assert [e.detail["n"] for e in events] == [0, 1, 2, 3]
    assert store.events("nothere00000") == []


def test_a_large_record_is_kept_in_s3(data_provider) -> None:
    big = record(7)
    big.error = "x" * 350_000
    data_provider.store.create(big)
    item = data_provider.clients.client("dynamodb").get_item(
        TableName="runvoy-executions", Key={"pk": {"S": f"exec#{big.id}"}, "sk": {"S": "record"}}
    )["Item"]
    assert "body" not in item and item["body_key"]["S"] == f"records/{big.id}.json"
    assert data_provider.store.get(big.id).error == big.error
