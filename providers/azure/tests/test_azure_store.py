"""Execution records and events in Azure Table storage (Azurite), through azure-data-tables."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runvoy_core.errors import AlreadyExists, NotFound, VersionConflict
from runvoy_core.models import Execution, ExecutionRequest, Status, StatusChange
from runvoy_core.ports import ExecutionQuery


def record(
    execution_id: str, *, minutes_ago: int = 0, labels: dict[str, str] | None = None, **fields: Any
) -> Execution:
    return Execution(
        id=execution_id,
        provider="azure",
        request=ExecutionRequest(command="echo hi", labels=labels or {}),
        created_at=datetime(2026, 11, 27, 3, 0, tzinfo=UTC) - timedelta(minutes=minutes_ago),
        **fields,
    )


def test_create_get_update_with_version_checks(provider: Any) -> None:
    store = provider.store
    created = store.create(record("e00000000001"))
    assert created.version == 1
    with pytest.raises(AlreadyExists):
        store.create(record("e00000000001"))
    fetched = store.get("e00000000001")
    assert fetched is not None and fetched.version == 1 and fetched.request.command == "echo hi"
    fetched.status = Status.RUNNING
    updated = store.update(fetched)
    assert updated.version == 2
    with pytest.raises(VersionConflict):
        store.update(fetched)  # still version 1: stale
    assert store.get("e00000000001").status is Status.RUNNING
    assert store.get("nope") is None
    with pytest.raises(NotFound):
        store.update(record("e00000000999", version=1))


def test_a_stale_update_from_another_client_loses(make_provider: Any) -> None:
    """Two processes (two providers, each with its own ETag cache) race on one record: one write wins."""
    first = make_provider()
    second_store = type(first.store)(first.clients, first.config.executions_table)
    first.store.create(record("e00000000002"))
    mine = first.store.get("e00000000002")
    theirs = second_store.get("e00000000002")
    theirs.reason = "theirs"
    second_store.update(theirs)
    mine.reason = "mine"
    with pytest.raises(VersionConflict):
        first.store.update(mine)  # its cached ETag is stale: the conditional write fails
    assert first.store.get("e00000000002").reason == "theirs"


def test_concurrent_updates_of_one_version_have_exactly_one_winner(provider: Any) -> None:
    store = provider.store
    store.create(record("e00000000003"))
    base = store.get("e00000000003")
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        fresh_store = type(store)(provider.clients, provider.config.executions_table)
        mine = base.model_copy(update={"reason": f"writer {n}"})
        try:
            fresh_store.update(mine)
            outcomes.append("won")
        except VersionConflict:
            outcomes.append("lost")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert store.get("e00000000003").version == 2


def test_listing_is_newest_first_filtered_and_paged(provider: Any) -> None:
    store = provider.store
    for n in range(7):
        store.create(record(f"e1000000000{n}", minutes_ago=n, labels={"team": "a" if n % 2 else "b"}))
    done = store.get("e10000000003")
    done.status = Status.SUCCEEDED
    store.update(done)
    page = store.list(ExecutionQuery(limit=3))
    assert [e.id for e in page.executions] == ["e10000000000", "e10000000001", "e10000000002"]
    assert page.cursor is not None
    rest = store.list(ExecutionQuery(limit=10, cursor=page.cursor))
    assert [e.id for e in rest.executions] == ["e10000000003", "e10000000004", "e10000000005", "e10000000006"]
    assert rest.cursor is None
    succeeded = store.list(ExecutionQuery(statuses=frozenset({Status.SUCCEEDED})))
    assert [e.id for e in succeeded.executions] == ["e10000000003"]
    assert succeeded.executions[0].version == 2  # the listing copy follows the record
    labelled = store.list(ExecutionQuery(labels={"team": "a"}))
    assert [e.id for e in labelled.executions] == ["e10000000001", "e10000000003", "e10000000005"]
    recent = store.list(ExecutionQuery(since=datetime(2026, 11, 27, 2, 58, tzinfo=UTC)))
    assert [e.id for e in recent.executions] == ["e10000000000", "e10000000001", "e10000000002"]


def test_resolve_prefix(provider: Any) -> None:
    store = provider.store
    for execution_id in ("abc000000001", "abc000000002", "abd000000003"):
        store.create(record(execution_id))
    assert sorted(store.resolve_prefix("abc", limit=5)) == ["abc000000001", "abc000000002"]
    assert list(store.resolve_prefix("abd")) == ["abd000000003"]
    assert len(store.resolve_prefix("ab", limit=2)) == 2
    assert list(store.resolve_prefix("zz")) == []


def test_events_come_back_in_order(provider: Any) -> None:
    store = provider.store
    store.create(record("e00000000004"))
    at = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    for n, status in enumerate([Status.PENDING, Status.STARTING, Status.RUNNING, Status.SUCCEEDED]):
        store.append_event(
            "e00000000004", StatusChange(at=at, status=status, event=f"step{n}", detail={"n": n})
        )
    events = store.events("e00000000004")
    assert [e.event for e in events] == ["step0", "step1", "step2", "step3"]
    assert events[3].status is Status.SUCCEEDED and events[3].detail == {"n": 3}
    assert store.events("e00000000005") == []


def test_a_long_record_is_split_over_properties(provider: Any) -> None:
    long = record("e00000000006")
    long.request = ExecutionRequest(command="echo " + "x" * 100_000)
    provider.store.create(long)
    assert provider.store.get("e00000000006").request.command == long.request.command
