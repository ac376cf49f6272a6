"""Flat with size (issue 14): status, list and the cost rollups read the same number of entities in the same
number of requests with 100 or 2,000 stored runs, and every query is a key range.

The requests are observed on the wire, in the real SDK's transport (the Azure clients are built with a
counting ``RequestsTransport``), against Azurite."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.pipeline.transport import RequestsTransport
from runvoy_azure.clients import AzureClients
from runvoy_azure.config import AzureConfig
from runvoy_azure.register import TableLockRegister
from runvoy_azure.store import TableStore

from runvoy_core.errors import TransientProviderError
from runvoy_core.models import ACTIVE_STATUSES, Cost, Execution, ExecutionRequest, Status
from runvoy_core.ports import ExecutionQuery
from runvoy_core.testing.faultproxy import Chaos, FaultProxy, azure_storage_dialect

BASE = datetime(2026, 11, 1, tzinfo=UTC)
RARE = 3
"""The oldest runs are RUNNING and labelled team=rare: an index must find them without reading the rest."""
KEY_WORDS = {"PartitionKey", "RowKey", "and", "or", "eq", "ne", "gt", "ge", "lt", "le"}


@dataclass
class Call:
    method: str
    path: str
    filter: str | None
    entities: int


class Wire(RequestsTransport):  # type: ignore[misc]
    """The SDK's own HTTP transport, noting each request it sends and how many entities came back."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = super().send(request, **kwargs)
        url = urlsplit(request.url)
        entities = 0
        if request.method == "GET" and response.status_code == 200 and not kwargs.get("stream"):
            payload = json.loads(response.text())
            # a query answers {"value": [...]}, a point read the entity itself
            entities = len(payload["value"]) if "value" in payload else 1
        query = parse_qs(url.query)
        self.calls.append(Call(request.method, url.path, (query.get("$filter") or [None])[0], entities))
        return response

    def measure(self, action: Callable[[], Any]) -> tuple[Any, int, int, list[str]]:
        """``action``'s result, its requests, the entities they returned and the filters they sent."""
        start = len(self.calls)
        result = action()
        calls = self.calls[start:]
        return result, len(calls), sum(c.entities for c in calls), [c.filter for c in calls if c.filter]


class WiredClients(AzureClients):
    def __init__(self, config: AzureConfig, wire: Wire) -> None:
        super().__init__(config)
        self.wire = wire

    def _storage_kwargs(self) -> dict[str, Any]:
        return {**super()._storage_kwargs(), "transport": self.wire}


@pytest.fixture
def wired(provider: Any) -> Iterator[tuple[TableStore, Wire]]:
    wire = Wire()
    clients = WiredClients(provider.config, wire)
    yield TableStore(clients, provider.config.executions_table), wire
    clients.close()


def key_only(condition: str) -> bool:
    """True when an OData filter names nothing but the keys (the service reads only the rows it returns)."""
    words = set(re.findall(r"[A-Za-z_]+", re.sub(r"'(?:[^']|'')*'", "''", condition)))
    return words <= KEY_WORDS


def run(n: int, **fields: Any) -> Execution:
    old = n < RARE
    return Execution(
        id=hashlib.sha256(str(n).encode()).hexdigest()[:12],
        provider="azure",
        # the others carry no label: one entity fewer each to seed, and no index has to skip them
        request=ExecutionRequest(command="echo hi", labels={"team": "rare"} if old else {}),
        status=Status.RUNNING if old else Status.SUCCEEDED,
        created_at=BASE + timedelta(minutes=n),
        **fields,
    )


def seed(provider: Any, runs: range) -> None:
    """Write the runs as the store lays them out, a hundred entities per transaction (far quicker than one
    create each; the layout comes from the store's own ``entities``)."""
    store = provider.store
    table = provider.clients.tables.get_table_client(provider.config.executions_table)
    entities: list[dict[str, Any]] = []
    for n in runs:
        record, copies, labels = store.entities(run(n, version=1))
        entities += [record, *copies, *labels]
    for start in range(0, len(entities), 100):
        table.submit_transaction([("create", e) for e in entities[start : start + 100]])


def readings(store: TableStore, wire: Wire, newest: int) -> dict[str, tuple[int, int]]:
    """(requests, entities) of each read of status and list; checks what they return on the way."""
    target = run(1).id
    since = BASE + timedelta(minutes=newest - 9)
    checks: dict[str, tuple[Callable[[], Any], Callable[[Any], bool]]] = {
        "status": (
            lambda: (store.resolve_prefix(target[:8]), store.get(target)),
            lambda got: list(got[0]) == [target] and got[1].id == target,
        ),
        "list": (
            lambda: store.list(ExecutionQuery(limit=50)),
            lambda page: page.executions[0].id == run(newest).id and len(page.executions) == 50,
        ),
        "list --status RUNNING": (
            lambda: store.list(ExecutionQuery(statuses=frozenset({Status.RUNNING}), limit=50)),
            lambda page: [e.id for e in page.executions] == [run(n).id for n in reversed(range(RARE))],
        ),
        "list of the active statuses": (
            lambda: store.list(ExecutionQuery(statuses=frozenset(ACTIVE_STATUSES), limit=50)),
            lambda page: len(page.executions) == RARE and page.cursor is None,
        ),
        "list --label team=rare": (
            lambda: store.list(ExecutionQuery(labels={"team": "rare"}, limit=50)),
            lambda page: [e.id for e in page.executions] == [run(n).id for n in reversed(range(RARE))],
        ),
        "list --since": (
            lambda: store.list(ExecutionQuery(since=since, limit=50)),
            lambda page: len(page.executions) == 10 and page.cursor is None,
        ),
        "list --label team=rare --status RUNNING": (
            lambda: store.list(
                ExecutionQuery(labels={"team": "rare"}, statuses=frozenset({Status.RUNNING}), limit=50)
            ),
            lambda page: len(page.executions) == RARE,
        ),
    }
    out: dict[str, tuple[int, int]] = {}
    for name, (action, check) in checks.items():
        result, requests, entities, filters = wire.measure(action)
        assert check(result), name
        if "--label" not in name or "--status" not in name:
            assert all(key_only(f) for f in filters), (name, filters)
        out[name] = (requests, entities)
    return out


def test_status_and_list_read_as_much_with_2000_runs_as_with_100(
    provider: Any, wired: tuple[TableStore, Wire]
) -> None:
    store, wire = wired
    seed(provider, range(100))
    small = readings(store, wire, newest=99)
    seed(provider, range(100, 2000))
    large = readings(store, wire, newest=1999)
    assert large == small
    assert small["status"] == (2, 2)  # one key range of at most `limit` ids, one point read
    assert small["list"] == (1, 51)  # one page and the row that tells there is more
    assert small["list --status RUNNING"] == (1, RARE)
    assert small["list of the active statuses"][0] == len(ACTIVE_STATUSES)  # one range per status
    assert small["list --label team=rare"] == (1, RARE)


def test_the_next_page_of_a_status_listing_starts_where_the_last_one_ended(
    provider: Any, wired: tuple[TableStore, Wire]
) -> None:
    store, wire = wired
    seed(provider, range(40))
    query = ExecutionQuery(statuses=frozenset({Status.RUNNING, Status.SUCCEEDED}), limit=15)
    seen: list[str] = []
    for _ in range(5):
        page, requests, entities, _ = wire.measure(partial(store.list, query))
        assert requests == 2 and entities <= 2 * 16
        seen += [e.id for e in page.executions]
        if page.cursor is None:
            break
        query = query.model_copy(update={"cursor": page.cursor})
    assert seen == [run(n).id for n in reversed(range(40))]


def test_an_update_moves_the_run_between_status_listings(wired: tuple[TableStore, Wire]) -> None:
    store, wire = wired
    created = store.create(run(0).model_copy(update={"status": Status.PENDING}))
    assert created.request.labels == {"team": "rare"}
    running = store.update(created.model_copy(update={"status": Status.RUNNING}))
    store.update(running.model_copy(update={"status": Status.SUCCEEDED, "reason": "done"}))

    def listed(status: Status) -> list[str]:
        page, requests, _, filters = wire.measure(
            lambda: store.list(ExecutionQuery(statuses=frozenset({status})))
        )
        assert requests == 1 and all(key_only(f) for f in filters), filters  # the status's own range
        return [e.id for e in page.executions]

    assert listed(Status.PENDING) == [] and listed(Status.RUNNING) == []
    assert listed(Status.SUCCEEDED) == [created.id]
    by_label = store.list(ExecutionQuery(labels={"team": "rare"})).executions
    assert [(e.id, e.status, e.reason, e.version) for e in by_label] == [
        (created.id, Status.SUCCEEDED, "done", 3)
    ]


def test_a_record_of_the_older_layout_joins_the_status_listing_on_its_next_write(provider: Any) -> None:
    """Records written before the status and label copies have only their ``t:`` copy: an update must
    not fail on the status copy it would move, and writes the copies."""
    store = provider.store
    old = run(2).model_copy(update={"status": Status.RUNNING, "version": 1})
    record, copies, _ = store.entities(old)
    for entity in (record, copies[0]):
        entity["layout"] = 1
    table = provider.clients.tables.get_table_client(provider.config.executions_table)
    table.submit_transaction([("create", record), ("create", copies[0])])
    fresh = TableStore(provider.clients, provider.config.executions_table)
    current = fresh.get(old.id)
    assert current is not None
    fresh.update(current.model_copy(update={"status": Status.FAILED}))
    failed = fresh.list(ExecutionQuery(statuses=frozenset({Status.FAILED}))).executions
    assert [e.id for e in failed] == [old.id]
    assert [e.id for e in fresh.list(ExecutionQuery(labels={"team": "rare"})).executions] == [old.id]


def test_setup_indexes_the_records_of_the_older_layout_once(provider: Any) -> None:
    """After an upgrade, `runvoy setup` gives older records their copies, so `list --status` and reconcile
    (which lists the ended runs to count their costs) find them; later setups skip the scan."""
    table = provider.clients.tables.get_table_client(provider.config.executions_table)
    table.delete_entity("meta", "layout")  # this table was set up before the layout was noted
    for n in (0, 5):
        old = run(n).model_copy(update={"status": Status.FAILED, "version": 1})
        record, copies, _ = provider.store.entities(old)
        for entity in (record, copies[0]):
            del entity["layout"]
        table.submit_transaction([("create", record), ("create", copies[0])])
    failed = ExecutionQuery(statuses=frozenset({Status.FAILED}))
    assert provider.store.list(failed).executions == []
    planned = [s for s in provider.setup(dry_run=True) if s["resource"].startswith("records")]
    assert [(s["action"], s["detail"].split()[0]) for s in planned] == [("would index", "2")]
    assert provider.store.list(failed).executions == []  # a dry run writes nothing
    done = [s for s in provider.setup(dry_run=False) if s["resource"].startswith("records")]
    assert [s["action"] for s in done] == ["indexed"]
    assert [e.id for e in provider.store.list(failed).executions] == [run(5).id, run(0).id]
    assert [e.id for e in provider.store.list(ExecutionQuery(labels={"team": "rare"})).executions] == [
        run(0).id
    ]
    assert provider.store.get(run(0).id).version == 1  # indexing is no new version of the record
    assert not [s for s in provider.setup(dry_run=True) if s["resource"].startswith("records")]


def test_a_run_with_more_labels_than_one_transaction_holds_is_listed_under_each(
    wired: tuple[TableStore, Wire],
) -> None:
    store, wire = wired
    labels = {f"k{n:03d}": f"v{n}" for n in range(150)}
    created = store.create(
        Execution(
            id="5e1abe100000",
            provider="azure",
            request=ExecutionRequest(command="echo hi", labels=labels),
            created_at=BASE,
        )
    )
    store.update(created.model_copy(update={"status": Status.RUNNING}))
    for key in ("k000", "k099", "k149"):
        page, _, entities, filters = wire.measure(
            partial(store.list, ExecutionQuery(labels={key: labels[key]}))
        )
        assert [(e.id, e.status) for e in page.executions] == [(created.id, Status.RUNNING)], key
        assert entities == 1 and all(key_only(f) for f in filters), filters  # the label's own range


# -- cost rollups ---------------------------------------------------------------------------------------------
def ended(n: int, *, user: str = "ann", hour: int = 0, total: str = "0.25", seconds: int = 60) -> Execution:
    finished = BASE + timedelta(hours=hour, minutes=n % 60)
    return Execution(
        id=f"c0{uuid.uuid4().hex[:10]}",
        provider="azure",
        user=user,
        request=ExecutionRequest(command="true", labels={"team": "data"}),
        status=Status.SUCCEEDED,
        created_at=finished - timedelta(minutes=1),
        finished_at=finished,
        cost=Cost(
            provider="azure",
            total=Decimal(total),
            billed_seconds=Decimal(seconds),
            equivalents={"aws": Decimal("0.5")},
        ),
    )


def buckets(store: TableStore) -> dict[tuple[datetime, str | None], tuple[int, Decimal, Decimal]]:
    return {
        (row.hour, row.user): (row.runs, row.total, row.billed_seconds)
        for row in store.rollups(BASE - timedelta(days=1))
    }


def test_rollups_read_only_their_buckets_however_many_runs_were_counted(
    provider: Any, wired: tuple[TableStore, Wire]
) -> None:
    store, wire = wired
    shapes = [("ann", 0), ("ann", 1), ("bob", 0), ("bob", 5)]

    def count(n: int) -> None:
        for i in range(n):
            user, hour = shapes[i % len(shapes)]
            assert store.add_to_rollups(ended(i, user=user, hour=hour)) is True

    count(8)
    rows, small_requests, small_entities, filters = wire.measure(lambda: store.rollups(BASE))
    assert (small_requests, small_entities, len(rows)) == (1, 4, 4)
    assert all(key_only(f) for f in filters), filters
    count(120)
    rows, requests, entities, _ = wire.measure(lambda: store.rollups(BASE))
    assert (requests, entities) == (small_requests, small_entities)
    totals = {(r.hour, r.user): (r.runs, r.total, r.billed_seconds, r.equivalents) for r in rows}
    assert totals[(BASE, "ann")] == (32, Decimal("8.00"), Decimal(32 * 60), {"aws": Decimal("16.0")})
    assert totals[(BASE + timedelta(hours=5), "bob")][:2] == (32, Decimal("8.00"))
    # since/until select hours: from the hour of `since`, up to the hours that start before `until`
    assert {r.hour for r in store.rollups(BASE + timedelta(minutes=90))} == {
        BASE + timedelta(hours=1),
        BASE + timedelta(hours=5),
    }
    assert {r.hour for r in store.rollups(BASE, BASE + timedelta(hours=1))} == {BASE}
    assert {r.hour for r in store.rollups(BASE, BASE + timedelta(hours=5, minutes=30))} == {
        BASE,
        BASE + timedelta(hours=1),
        BASE + timedelta(hours=5),
    }


def test_a_run_is_counted_once_however_often_it_is_offered(provider: Any) -> None:
    store = provider.store
    execution = ended(1)
    assert store.add_to_rollups(execution) is True
    wire = Wire()
    clients = WiredClients(provider.config, wire)
    try:
        other_process = TableStore(clients, provider.config.executions_table)
        added, requests, _, _ = wire.measure(lambda: other_process.add_to_rollups(execution))
        assert added is False and requests == 1  # reconcile offers every ended run: one point read each
    finally:
        clients.close()
    assert store.add_to_rollups(execution) is False
    assert buckets(store) == {(BASE, "ann"): (1, Decimal("0.25"), Decimal(60))}


def test_concurrent_counts_of_one_bucket_all_land_once(provider: Any) -> None:
    distinct = [ended(n) for n in range(6)]
    same = ended(59, user="bob")
    outcomes: list[tuple[str, bool]] = []
    guard = threading.Lock()
    barrier = threading.Barrier(len(distinct) + 4)

    def count(execution: Execution) -> None:
        store = TableStore(provider.clients, provider.config.executions_table)
        barrier.wait()
        added = store.add_to_rollups(execution)
        with guard:
            outcomes.append((execution.id, added))

    threads = [threading.Thread(target=count, args=(e,)) for e in [*distinct, *([same] * 4)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(added for eid, added in outcomes if eid != same.id)
    assert sorted(added for eid, added in outcomes if eid == same.id) == [False, False, False, True]
    assert buckets(provider.store) == {
        (BASE, "ann"): (6, Decimal("1.50"), Decimal(360)),
        (BASE, "bob"): (1, Decimal("0.25"), Decimal(60)),
    }


def test_a_count_whose_answer_was_lost_is_not_counted_again(
    azurite: Any, fake_aci: Any, make_provider: Any
) -> None:
    chaos = Chaos(seed=14)
    with FaultProxy(
        f"http://127.0.0.1:{azurite.table_port}", chaos, name="table", dialect=azure_storage_dialect
    ) as proxy:
        blob = f"http://127.0.0.1:{azurite.blob_port}"
        provider = make_provider(storage_connection_string=azurite.connection_string_via(blob, proxy.url))
        execution = ended(2)
        chaos.once("lost_answer", method="POST", path_contains="$batch")
        try:
            first: bool | None = provider.store.add_to_rollups(execution)
        except TransientProviderError:
            first = None  # the SDK does not resend a POST whose answer it lost: the caller tries again
        assert chaos.faulted("lost_answer"), "the fault was never injected"
        assert first in (None, False)  # the transaction went through: nothing may report a new count
        assert provider.store.add_to_rollups(execution) is False
        assert buckets(provider.store) == {(BASE, "ann"): (1, Decimal("0.25"), Decimal(60))}


def test_a_run_through_the_provider_leaves_its_cost_in_the_rollups(rv: Any) -> None:
    execution = rv.run("echo costed")
    assert execution.status is Status.SUCCEEDED and execution.cost is not None
    rows = rv.provider.store.rollups(execution.created_at - timedelta(hours=1))
    assert [(r.runs, r.total, r.provider, r.user) for r in rows] == [
        (1, execution.cost.total, "azure", execution.user)
    ]
    assert rv.provider.store.add_to_rollups(execution) is False  # reconcile offering it again adds nothing


# -- locks ----------------------------------------------------------------------------------------------------
@pytest.fixture
def wired_locks(provider: Any) -> Iterator[tuple[TableLockRegister, Wire]]:
    wire = Wire()
    clients = WiredClients(provider.config, wire)
    yield TableLockRegister(clients, provider.config.locks_table), wire
    clients.close()


def test_locks_list_reads_the_locks_alone_however_many_runs_queued(
    wired_locks: tuple[TableLockRegister, Wire],
) -> None:
    """The queue keeps one ticket per queued run forever (runvoy_core.lock_queue): they must not be read."""
    register, wire = wired_locks
    for name in ("etl", "etl#2", "db/migrate"):
        assert register.create_if_absent(name, {"name": name})

    def queue(tickets: range) -> None:
        for n in tickets:
            assert register.create_if_absent(f"etl~{n}", {"state": "done"})

    queue(range(10))
    locks, requests, entities, filters = wire.measure(register.list_locks)
    assert [name for name, _ in locks] == ["db/migrate", "etl", "etl#2"]
    assert (requests, entities) == (1, 3) and all(key_only(f) for f in filters)
    queue(range(10, 200))
    assert wire.measure(register.list_locks)[1:3] == (requests, entities)
    everything = {name for name, _ in register.list()}  # the register's contract: every entry
    assert everything == {"etl", "etl#2", "db/migrate", *(f"etl~{n}" for n in range(200))}


def test_a_queue_entry_of_the_older_layout_is_read_replaced_and_not_created_again(provider: Any) -> None:
    """Before decision 0706 the queue's entries lived in the locks' partition."""
    register = provider.locks
    table = provider.clients.tables.get_table_client(provider.config.locks_table)
    table.create_entity({"PartitionKey": "lock", "RowKey": "etl~queue", "value": '{"next": 3}'})
    seen = register.read("etl~queue")
    assert seen is not None and seen.value == {"next": 3}
    assert register.create_if_absent("etl~queue", {"next": 0}) is False
    assert register.replace_if_version("etl~queue", {"next": 4}, seen.version) is True
    assert register.replace_if_version("etl~queue", {"next": 5}, seen.version) is False  # stale ETag
    now = register.read("etl~queue")
    assert now is not None and now.value == {"next": 4}
    assert dict(register.list())["etl~queue"].value == {"next": 4}
    assert register.list_locks() == []
