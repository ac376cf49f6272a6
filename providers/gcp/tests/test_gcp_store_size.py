"""Flat with size on GCS (issue 14): status, the first page of list (plain and filtered), locks list and the
cost rollups make the same HTTP requests and list/read the same number of objects with 100 and with 1,000
stored runs. Counted on the Google storage client's own HTTP session, against fake-gcs-server.

1,000, not more: fake-gcs-server's writes slow down as a bucket grows (about 30 ms each past 4,000 objects),
and the counts compared are exact, so ten times the runs already shows what does not grow."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runvoy_gcp.objects import ObjectStore
from runvoy_gcp.store import LIST_SLACK, ROLLUP_SHARDS, GcsExecutionStore, label_segment

from runvoy_core.cost.rollups import bucket_key, bucket_of, row_to_dict
from runvoy_core.lock_queue import queue_key, ticket_key
from runvoy_core.models import Cost, Execution, ExecutionRequest, Status
from runvoy_core.ports import ExecutionQuery
from runvoy_core.ports.optional import CostRollups, LockListing

BASE = datetime(2026, 3, 1, tzinfo=UTC)
SMALL, LARGE = 100, 1000
RUNNING_IDS = [f"{n:012x}" for n in (1, 2, 3)]  # among the oldest: a scan would have to pass every other run


class Transport:
    """Every HTTP exchange of the storage client (a response hook on its requests session): the method,
    the object path, and for object listings how many objects the answer returned."""

    def __init__(self, session: Any) -> None:
        self.calls: list[tuple[str, str]] = []
        self.listed = 0
        self.guard = threading.Lock()
        session.hooks["response"].append(self._seen)

    def _seen(self, response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        path = unquote(urlsplit(request.url).path)
        is_listing = request.method == "GET" and path.endswith("/o")
        items = len(response.json().get("items", [])) if is_listing and response.ok else 0
        with self.guard:
            self.calls.append((request.method, "list" if is_listing else path.rsplit("/o/", 1)[-1]))
            self.listed += items

    def measure(self, fn: Any) -> tuple[Any, dict[str, int]]:
        with self.guard:
            self.calls.clear()
            self.listed = 0
        result = fn()
        with self.guard:
            kinds = Counter(
                "list" if name == "list" else ("get" if method == "GET" else method.lower())
                for method, name in self.calls
            )
            return result, {**kinds, "requests": len(self.calls), "objects_listed": self.listed}


@pytest.fixture
def transport(provider) -> Transport:
    return Transport(provider.clients.storage._http)


@pytest.fixture
def store(provider) -> GcsExecutionStore:
    return GcsExecutionStore(ObjectStore(provider.config, provider.clients))


def execution(n: int, status: Status = Status.SUCCEEDED, **labels: str) -> Execution:
    return Execution(
        id=f"{n:012x}",
        provider="gcp",
        request=ExecutionRequest(command="true", labels=labels),
        status=status,
        created_at=BASE + timedelta(seconds=n),
    )


def fill(store: GcsExecutionStore, numbers: range) -> None:
    def one(n: int) -> None:
        if n <= len(RUNNING_IDS):
            stored = store.create(execution(n, Status.PENDING, team="a"))
            store.update(stored.model_copy(update={"status": Status.RUNNING}))  # moves its status entry
        elif n <= SMALL:
            store.create(execution(n, team="a" if n % 50 == 0 else "b"))
        else:
            store.create(execution(n))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, numbers))


QUERIES: dict[str, ExecutionQuery] = {
    "first page": ExecutionQuery(limit=20),
    "running": ExecutionQuery(statuses=frozenset({Status.RUNNING}), limit=20),
    "active": ExecutionQuery(statuses=frozenset({Status.PENDING, Status.RUNNING}), limit=20),
    "label": ExecutionQuery(labels={"team": "a"}, limit=20),
    "running with label": ExecutionQuery(
        statuses=frozenset({Status.RUNNING}), labels={"team": "a"}, limit=20
    ),
}


def costs(store: GcsExecutionStore, transport: Transport, now: datetime) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    for name, query in QUERIES.items():
        page, measured[name] = transport.measure(lambda q=query: store.list(q))
        measured[name]["shown"] = len(page.executions)
    since = ExecutionQuery(since=now - timedelta(seconds=10), limit=20)
    _, measured["since"] = transport.measure(lambda: store.list(since))
    _, measured["get"] = transport.measure(lambda: store.get(RUNNING_IDS[0]))
    _, measured["resolve_prefix"] = transport.measure(lambda: store.resolve_prefix(RUNNING_IDS[0][:9]))
    return measured


def test_status_and_list_cost_the_same_with_100_and_1000_runs(store, transport) -> None:
    fill(store, range(1, SMALL + 1))
    small = costs(store, transport, BASE + timedelta(seconds=SMALL))
    fill(store, range(SMALL + 1, LARGE + 1))
    large = costs(store, transport, BASE + timedelta(seconds=LARGE))
    assert large == small
    # one listing call per index read, one GET per record shown
    assert small["first page"] == {"list": 1, "get": 20, "requests": 21, "objects_listed": 21, "shown": 20}
    assert small["running"] == {"list": 1, "get": 3, "requests": 4, "objects_listed": 3, "shown": 3}
    assert small["active"]["list"] == 2 and small["active"]["shown"] == 3
    assert small["label"]["shown"] == 3 + SMALL // 50
    assert small["running with label"]["shown"] == 3
    assert small["get"] == {"get": 1, "requests": 1, "objects_listed": 0}
    assert small["resolve_prefix"]["requests"] == 1 and small["resolve_prefix"]["objects_listed"] <= 2
    # a run's status entry moved with it: none is left under PENDING
    assert store.list(ExecutionQuery(statuses=frozenset({Status.PENDING}), limit=20)).executions == []


def test_a_sparse_filter_reads_a_bounded_page_and_continues_with_a_cursor(store, transport) -> None:
    fill(store, range(1, 200))
    query = ExecutionQuery(statuses=frozenset({Status.SUCCEEDED}), labels={"team": "a"}, limit=5)
    page, cost = transport.measure(lambda: store.list(query))
    assert cost["get"] <= query.limit + LIST_SLACK and cost["list"] == 1
    assert page.cursor is not None and len(page.executions) < query.limit
    seen = [e.id for e in page.executions]
    cursor = page.cursor
    while cursor is not None:
        page, cost = transport.measure(lambda c=cursor: store.list(query.model_copy(update={"cursor": c})))
        assert cost["get"] <= query.limit + LIST_SLACK
        seen.extend(e.id for e in page.executions)
        cursor = page.cursor
    assert seen == [f"{n:012x}" for n in (50, 100)[::-1]], "every match, newest first, once"


def test_locks_list_is_one_listing_without_a_read_per_lock(provider, transport) -> None:
    register = provider.locks
    for i in range(12):
        register.create_if_absent(f"lock-{i}", {"name": f"lock-{i}", "fence": i})
        register.create_if_absent(f"lock-{i}~{i}", {"ticket": i})  # queue tickets share the folder
    current = register.read("lock-3")
    assert current is not None
    assert register.replace_if_version("lock-3", {"name": "lock-3", "fence": 99}, current.version)
    listed, cost = transport.measure(register.list)
    assert cost == {"list": 1, "requests": 1, "objects_listed": 24}
    by_name = dict(listed)
    assert by_name["lock-3"].value == {"name": "lock-3", "fence": 99}
    again = register.read("lock-3")
    assert again is not None and by_name["lock-3"].version == again.version  # the version CAS needs
    # a lock written by an earlier version has no value in its metadata: read, once
    provider.store.objects.create("locks/old.json", json.dumps({"name": "old"}).encode())
    listed, cost = transport.measure(register.list)
    assert cost["list"] == 1 and cost["get"] == 1
    assert dict(listed)["old"].value == {"name": "old"}


def test_locks_list_skips_the_queue_tickets_whatever_their_number(provider, transport) -> None:
    """`runvoy locks list` (LockListing.list_locks): a listing per lock that has a queue, not one name per
    run that ever queued for it."""
    register = provider.locks
    assert isinstance(register, LockListing)
    for name in ("a", "a.b", "ab", "b", "team/x"):
        register.create_if_absent(name, {"name": name})
    register.create_if_absent("a#1", {"name": "a#1"})  # a slot is a lock of its own: listed

    def queue(lock: str, tickets: int) -> None:
        register.create_if_absent(queue_key(lock), {"next": tickets})
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: register.create_if_absent(ticket_key(lock, n), {"n": n}), range(tickets)))

    queue("a", 10)
    queue("b", 10)
    small, small_cost = transport.measure(register.list_locks)
    queue("a", 300)  # 290 more tickets on the same two locks
    queue("b", 300)
    large, large_cost = transport.measure(register.list_locks)
    assert sorted(name for name, _ in small) == ["a", "a#1", "a.b", "ab", "b", "team/x"]
    assert sorted(large) == sorted(small)
    assert large_cost == small_cost == {"list": 1, "requests": 1, "objects_listed": 6}
    # the whole register still has every entry, tickets included
    assert len(register.list()) == 6 + 2 * 301


def ended(n: int, hour: int, user: str = "ann", total: str = "0.25") -> Execution:
    created = BASE + timedelta(hours=hour, minutes=n % 50)
    return Execution(
        id=f"{n:012x}",
        provider="gcp",
        user=user,
        request=ExecutionRequest(command="true", labels={"team": "a"}),
        status=Status.SUCCEEDED,
        created_at=created,
        finished_at=created + timedelta(seconds=30),
        cost=Cost(
            provider="gcp",
            currency="USD",
            billed_seconds=Decimal(30),
            total=Decimal(total),
            equivalents={"aws": Decimal("0.5")},
        ),
    )


def add_all(store: GcsExecutionStore, runs: list[Execution]) -> list[bool]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(store.add_to_rollups, runs))


def test_rollups_are_one_listing_whatever_the_number_of_runs(store, transport) -> None:
    assert isinstance(store, CostRollups)
    since = BASE - timedelta(days=30)
    first = [ended(n, hour=n % 3, user=("ann", "bob")[n % 2]) for n in range(1, 101)]
    assert all(add_all(store, first))
    rows, small = transport.measure(lambda: store.rollups(since))
    more = [ended(n, hour=n % 3, user=("ann", "bob")[n % 2]) for n in range(101, 401)]
    assert all(add_all(store, more))
    rows, large = transport.measure(lambda: store.rollups(since))
    buckets = 3 * 2  # hours x users
    assert small == large == {"list": 1, "requests": 1, "objects_listed": buckets * ROLLUP_SHARDS}
    assert len(rows) == buckets
    assert sum(r.runs for r in rows) == 400
    assert sum(r.total for r in rows) == Decimal("100.00")
    assert sum(r.equivalents["aws"] for r in rows) == Decimal("200.0")
    assert {r.hour for r in rows} == {BASE + timedelta(hours=h) for h in range(3)}
    # the hour range: >= the hour of since, < until
    window = store.rollups(BASE + timedelta(hours=1, minutes=10), BASE + timedelta(hours=2))
    assert {r.hour for r in window} == {BASE + timedelta(hours=1)}
    assert store.rollups(BASE + timedelta(hours=3)) == []


def test_rollups_count_each_run_once_under_retries_and_concurrent_adds(store) -> None:
    run = ended(7, hour=0)
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(store.add_to_rollups, [run] * 8))
    assert outcomes.count(True) == 1
    assert store.add_to_rollups(run) is False
    # a retry that computes another bucket (the record changed since) still counts into the first one
    assert store.add_to_rollups(run.model_copy(update={"user": "zed"})) is False
    (row,) = store.rollups(BASE)
    assert row.runs == 1 and row.total == Decimal("0.25") and row.user == "ann"


def test_a_crash_between_the_marker_and_the_bucket_is_completed_by_the_next_add(store) -> None:
    run = ended(9, hour=0)
    row = bucket_of(run)
    shard = store._shard_name(row, run.id)
    # what the first add wrote before it died: the marker, not the bucket
    claim = json.dumps({"bucket": shard, "row": row_to_dict(row)}).encode()
    assert store.objects.create(f"rollups/counted/{run.id}.json", claim) is not None
    assert store.rollups(BASE) == []
    assert store.add_to_rollups(run) is True
    assert store.add_to_rollups(run) is False
    (counted,) = store.rollups(BASE)
    assert counted.runs == 1 and bucket_key(counted) == bucket_key(row)


def test_a_run_that_has_not_ended_is_refused(store) -> None:
    with pytest.raises(ValueError):
        store.add_to_rollups(execution(1, Status.RUNNING))


@pytest.fixture
def invoke(gcp_settings, provider, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI in-process, configured by RUNVOY_PROVIDERS__GCP__* variables (as in test_gcp_cli.py)."""
    from click.testing import CliRunner

    from runvoy_cli.main import cli

    for key, value in gcp_settings.items():
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        monkeypatch.setenv(
            f"RUNVOY_PROVIDERS__GCP__{key.upper()}", text.lower() if isinstance(value, bool) else text
        )
    monkeypatch.setenv("RUNVOY_PROVIDER", "gcp")
    monkeypatch.setenv("RUNVOY_POLL_INTERVAL_MAX", "0.2")

    def run(*args: str) -> Any:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False, prog_name="runvoy")
        return result

    return run


def test_a_real_run_leaves_its_cost_in_the_rollups(invoke, provider) -> None:
    started = datetime.now(UTC)
    result = invoke("run", "--label", "team=data", "echo hi")
    assert result.exit_code == 0, result.stderr
    (record,) = provider.store.list(ExecutionQuery(limit=5)).executions
    assert record.status == Status.SUCCEEDED and record.cost is not None
    (row,) = provider.store.rollups(started - timedelta(hours=1))
    assert row.runs == 1 and row.provider == "gcp" and row.labels == (("team", "data"),)
    assert row.total == record.cost.total and row.billed_seconds == record.cost.billed_seconds
    assert provider.store.add_to_rollups(record) is False  # reconcile offering it again counts nothing


def test_setup_indexes_the_runs_of_earlier_versions_once(provider, store) -> None:
    legacy = execution(5, Status.FAILED, team="a")
    # what a version before the status and label indexes wrote: the record and its index entry only
    store.objects.create(
        f"executions/{legacy.id}.json", legacy.model_copy(update={"version": 1}).model_dump_json().encode()
    )
    store.objects.create(f"index/{store._entry(legacy)}", b"")
    store.create(execution(6, Status.FAILED))
    failed = ExecutionQuery(statuses=frozenset({Status.FAILED}), limit=10)
    assert [e.id for e in store.list(failed).executions] == [f"{6:012x}"]

    resource = f"gs://{provider.clients.bucket_name} status and label indexes"
    planned = {row["resource"]: row for row in provider.setup(dry_run=True)}
    assert planned[resource]["action"] == "would create"
    done = {row["resource"]: row for row in provider.setup()}
    assert done[resource] == {"resource": resource, "action": "created", "detail": "indexed 2 stored run(s)"}
    assert [e.id for e in store.list(failed).executions] == [f"{6:012x}", legacy.id]
    assert [e.id for e in store.list(ExecutionQuery(labels={"team": "a"})).executions] == [legacy.id]
    again = {row["resource"]: row for row in provider.setup()}
    assert again[resource]["action"] == "exists"


_KEYS = st.from_regex(r"[a-z0-9][a-z0-9_.:/-]{0,62}", fullmatch=True)
_VALUES = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=256)


@given(first=st.tuples(_KEYS, _VALUES), second=st.tuples(_KEYS, _VALUES))
def test_a_label_folder_is_one_short_name_part_and_labels_do_not_share_one(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    segment = label_segment(*first)
    assert "/" not in segment and len(segment.encode()) <= 200
    assert segment == label_segment(*first)
    if first != second and not segment.startswith("h-"):
        assert segment != label_segment(*second)
