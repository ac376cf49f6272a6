"""The store suite: create-if-absent, get, compare-and-swap updates (also under concurrency), newest-first
listing with filters and cursor pagination, id prefixes, append-only events. Requires a fixture ``store``
(an empty StorePort)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.models import Execution, ExecutionRequest, Status, StatusChange, new_execution_id
from runvoy_core.ports.store import ExecutionQuery

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def make_execution(
    execution_id: str | None = None, *, minutes: int = 0, status: Status = Status.PENDING, **labels: str
) -> Execution:
    return Execution(
        id=execution_id or new_execution_id(),
        provider="conformance",
        request=ExecutionRequest(command="echo hi", labels=labels),
        status=status,
        created_at=BASE + timedelta(minutes=minutes),
    )


class StoreConformance:
    concurrent_writers: int = 8

    def test_create_then_get(self, store: Any) -> None:
        ex = make_execution()
        stored = store.create(ex)
        assert stored.version == 1
        got = store.get(ex.id)
        assert got is not None and got.id == ex.id and got.version == 1
        assert got.request.command == "echo hi"
        assert got.created_at == ex.created_at

    def test_get_unknown_is_none(self, store: Any) -> None:
        assert store.get("ffffffffffff") is None

    def test_create_twice_raises_already_exists(self, store: Any) -> None:
        ex = make_execution()
        store.create(ex)
        with pytest.raises(AlreadyExists):
            store.create(ex)

    def test_update_bumps_the_version_and_persists(self, store: Any) -> None:
        stored = store.create(make_execution())
        stored.status = Status.RUNNING
        updated = store.update(stored)
        assert updated.version > stored.version
        got = store.get(stored.id)
        assert got is not None and got.status == Status.RUNNING and got.version == updated.version

    def test_update_with_a_stale_version_conflicts(self, store: Any) -> None:
        stored = store.create(make_execution())
        first = stored.model_copy(update={"status": Status.RUNNING})
        store.update(first)
        stale = stored.model_copy(update={"status": Status.FAILED})
        with pytest.raises(VersionConflict):
            store.update(stale)
        got = store.get(stored.id)
        assert got is not None and got.status == Status.RUNNING

    def test_concurrent_updates_have_exactly_one_winner(self, store: Any) -> None:
        stored = store.create(make_execution())
        barrier = threading.Barrier(self.concurrent_writers)
        outcomes: list[str] = []
        guard = threading.Lock()

        def writer(i: int) -> None:
            mine = stored.model_copy(update={"reason": f"writer-{i}"})
            barrier.wait()
            try:
                store.update(mine)
                result = "won"
            except VersionConflict:
                result = "lost"
            with guard:
                outcomes.append(result)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(self.concurrent_writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(outcomes) == ["lost"] * (self.concurrent_writers - 1) + ["won"] or (
            outcomes.count("won") == 1 and len(outcomes) == self.concurrent_writers
        ), outcomes
        got = store.get(stored.id)
        assert got is not None and got.reason and got.reason.startswith("writer-")

    def test_list_is_newest_first_with_status_filter_and_cursor(self, store: Any) -> None:
        created = []
        for i in range(11):
            status = Status.SUCCEEDED if i % 2 == 0 else Status.FAILED
            created.append(store.create(make_execution(minutes=i, status=status)))
        newest_first = [e.id for e in reversed(created)]

        seen: list[str] = []
        cursor = None
        for _ in range(20):
            page = store.list(ExecutionQuery(limit=3, cursor=cursor))
            assert len(page.executions) <= 3
            seen.extend(e.id for e in page.executions)
            cursor = page.cursor
            if cursor is None:
                break
        assert seen == newest_first, "pages must be newest first, without duplicates or gaps"

        failed = store.list(ExecutionQuery(statuses=frozenset({Status.FAILED}), limit=100))
        assert [e.id for e in failed.executions] == [
            e.id for e in reversed(created) if e.status == Status.FAILED
        ]

        since = store.list(ExecutionQuery(since=BASE + timedelta(minutes=8), limit=100))
        assert [e.id for e in since.executions] == newest_first[:3]

    def test_list_filters_by_labels(self, store: Any) -> None:
        a = store.create(make_execution(minutes=1, team="data"))
        store.create(make_execution(minutes=2, team="web"))
        b = store.create(make_execution(minutes=3, team="data", env="prod"))
        page = store.list(ExecutionQuery(labels={"team": "data"}, limit=10))
        assert [e.id for e in page.executions] == [b.id, a.id]
        page = store.list(ExecutionQuery(labels={"team": "data", "env": "prod"}, limit=10))
        assert [e.id for e in page.executions] == [b.id]

    def test_resolve_prefix(self, store: Any) -> None:
        store.create(make_execution("abc123000001"))
        store.create(make_execution("abc123000002"))
        store.create(make_execution("abd000000000"))
        assert list(store.resolve_prefix("abd")) == ["abd000000000"]
        assert sorted(store.resolve_prefix("abc123", limit=5)) == ["abc123000001", "abc123000002"]
        assert len(store.resolve_prefix("abc", limit=1)) == 1
        assert list(store.resolve_prefix("fff")) == []

    def test_events_are_append_only_and_ordered(self, store: Any) -> None:
        ex = store.create(make_execution())
        other = store.create(make_execution())
        names = ["created", "started", "running", "finished"]
        for name in names:
            store.append_event(ex.id, StatusChange(event=name, detail={"n": name}))
        store.append_event(other.id, StatusChange(event="elsewhere"))
        events = list(store.events(ex.id))
        assert [e.event for e in events] == names
        assert events[0].detail == {"n": "created"}
        store.append_event(ex.id, StatusChange(event="late", status=Status.LOST))
        after = list(store.events(ex.id))
        assert [e.event for e in after] == [*names, "late"]
        assert after[-1].status == Status.LOST
        assert list(store.events("ffffffffffff")) == []
