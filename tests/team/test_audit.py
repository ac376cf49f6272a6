"""The audit chain (runvoy_core.team.audit, decision 1509): one unbroken chain from many writers, every kind of
tampering detected, bounded entries without secrets, export and time ranges. Run on the in-process reference
store and on the local SQLite store (the store a laptop server uses; shared by processes)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_core.documents import MAX_VALUE_BYTES, encode_value
from runvoy_core.errors import ValidationFailed
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.providers.local.store import LocalStore
from runvoy_core.team.audit import (
    COLUMNS,
    GENESIS_HASH,
    HEAD_KEY,
    NAMESPACE,
    AuditEntry,
    AuditLog,
    AuditReport,
    entry_hash,
    entry_key,
    write_export,
)
from runvoy_core.team.context import Caller
from runvoy_core.testing.memory_documents import MemoryDocumentStore
from runvoy_core.testing.waiting import wait_for

ALICE = Caller("alice", "user", "admin", "ops", key_id="0123456789abcdef", address="10.0.0.7")
BOB = Caller("ci-bot", "service", "operator", "data")


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "memory":
        yield MemoryDocumentStore()
    else:
        local = LocalStore(tmp_path / "home")
        yield local
        local.close()


def _fill(log: AuditLog, n: int) -> list[AuditEntry]:
    return [
        log.append("run", f"execution/e{i}", "allowed", caller=ALICE if i % 2 else BOB, request_id=f"req-{i}")
        for i in range(n)
    ]


def _doc(store: DocumentStore, seq: int) -> Any:
    doc = store.get_document(NAMESPACE, entry_key(seq))
    assert doc is not None
    return doc


# -- appending -------------------------------------------------------------------------------------------------


def test_entries_form_a_chain_and_verify(store: DocumentStore) -> None:
    log = AuditLog(store)
    entries = _fill(log, 5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    first = entries[1]
    assert (first.actor, first.actor_kind, first.role, first.team, first.address) == (
        "alice",
        "user",
        "admin",
        "ops",
        "10.0.0.7",
    )
    assert entries[0].actor == "ci-bot" and entries[0].address is None
    report = log.verify()
    assert report.ok and report.entries == 5 and report.last_seq == 5 and report.head_seq == 5
    assert report.last_hash == entries[-1].hash
    assert AuditReport.from_dict(json.loads(json.dumps(report.as_dict()))) == report


def test_an_empty_log_verifies(store: DocumentStore) -> None:
    report = AuditLog(store).verify()
    assert report.ok and report.entries == 0 and report.last_hash == GENESIS_HASH


def test_anonymous_entry_and_bound_request_id(store: DocumentStore) -> None:
    from runvoy_core.logging import request_scope

    log = AuditLog(store)
    with request_scope() as request_id:
        entry = log.append("authenticate", "key/unknown", "failed", address="192.0.2.1")
    assert entry.actor is None and entry.role is None and entry.request_id == request_id
    assert entry.address == "192.0.2.1"
    assert log.verify().ok


def test_unknown_outcome_is_refused(store: DocumentStore) -> None:
    with pytest.raises(ValidationFailed, match="outcome"):
        AuditLog(store).append("run", "x", "maybe")
    assert AuditLog(store).verify().entries == 0


def test_many_threads_append_one_unbroken_chain(store: DocumentStore) -> None:
    log = AuditLog(store)
    threads, per_thread = 6, 15
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                log.append("submit", f"w{n}/{i}", "allowed", caller=ALICE)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures
    report = log.verify()
    assert report.ok, report.problem
    assert report.entries == threads * per_thread == report.head_seq
    resources = {e.resource for e in log.entries()}
    assert resources == {f"w{n}/{i}" for n in range(threads) for i in range(per_thread)}


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from runvoy_core.providers.local.store import LocalStore
    from runvoy_core.team.audit import AuditLog
    home, name, count, gate = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    store = LocalStore(home)
    log = AuditLog(store)
    log.verify()  # opens the database before the gate, so both writers start appending together
    (home / f"ready-{name}").touch()
    while not gate.exists():
        time.sleep(0.01)
    for i in range(count):
        log.append("run", f"{name}/{i}", "allowed")
    store.close()
    """
)


def test_two_processes_on_one_state_db_append_one_chain(tmp_path: Path) -> None:
    home = tmp_path / "home"
    LocalStore(home).close()
    gate = tmp_path / "go"
    count = 100
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(home), name, str(count), str(gate)])
        for name in ("p1", "p2")
    ]
    try:
        wait_for(
            lambda: all((home / f"ready-{n}").exists() for n in ("p1", "p2")), what="both writers are ready"
        )
        gate.touch()
        assert [w.wait(timeout=240) for w in writers] == [0, 0]
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
    store = LocalStore(home)
    log = AuditLog(store)
    report = log.verify()
    assert report.ok, report.problem
    assert report.entries == 2 * count == report.head_seq
    assert {e.resource for e in log.entries()} == {f"{n}/{i}" for n in ("p1", "p2") for i in range(count)}
    store.close()


def test_a_writer_that_crashed_before_the_head_is_healed_by_the_next(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 3)
    head = store.get_document(NAMESPACE, HEAD_KEY)
    assert head is not None
    stale = dict(head.value)
    _fill(log, 2)
    # what a writer leaves that stored entries 4 and 5 and died before moving the head
    current = store.get_document(NAMESPACE, HEAD_KEY)
    assert current is not None
    store.put_document(NAMESPACE, HEAD_KEY, stale, version=current.version)
    assert log.verify().ok  # a lagging head is no tampering
    entry = log.append("kill", "execution/x", "allowed", caller=ALICE)
    assert entry.seq == 6 and entry.prev_hash == _doc(store, 5).value["hash"]
    healed = store.get_document(NAMESPACE, HEAD_KEY)
    assert healed is not None and healed.value["seq"] == 6
    assert log.verify().ok


def test_times_never_go_back_along_the_chain(store: DocumentStore) -> None:
    moments = iter(datetime(2026, 1, 1, hour, tzinfo=UTC) for hour in (12, 11, 13))
    log = AuditLog(store, clock=lambda: next(moments))
    a, b, c = _fill(log, 3)
    assert a.at == b.at == datetime(2026, 1, 1, 12, tzinfo=UTC)  # a replica's clock behind: clamped
    assert c.at == datetime(2026, 1, 1, 13, tzinfo=UTC)
    assert log.verify().ok


# -- tampering -------------------------------------------------------------------------------------------------


def _rewrite(store: DocumentStore, seq: int, value: dict[str, Any]) -> None:
    store.put_document(NAMESPACE, entry_key(seq), value, version=_doc(store, seq).version)


def test_an_edited_field_is_detected(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 6)
    value = dict(_doc(store, 3).value)
    value["outcome"] = "denied"
    _rewrite(store, 3, value)
    report = log.verify()
    assert not report.ok and report.problem is not None
    assert (report.problem.kind, report.problem.seq) == ("edited", 3)
    assert report.entries == 2


def test_an_edit_with_a_recomputed_hash_is_detected_by_the_next_entry(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 6)
    value = dict(_doc(store, 3).value)
    value["actor"] = "mallory"
    value["hash"] = entry_hash(value)
    _rewrite(store, 3, value)
    problem = log.verify().problem
    assert problem is not None and (problem.kind, problem.seq) == ("inserted", 4)


def test_a_rewritten_last_entry_is_detected_by_the_head(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 4)
    value = dict(_doc(store, 4).value)
    value["resource"] = "execution/innocent"
    value["hash"] = entry_hash(value)
    _rewrite(store, 4, value)
    problem = log.verify().problem
    assert problem is not None and (problem.kind, problem.seq) == ("edited", 4)


def test_a_deleted_entry_is_detected(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 6)
    store.delete_document(NAMESPACE, entry_key(4), version=_doc(store, 4).version)
    problem = log.verify().problem
    assert problem is not None and (problem.kind, problem.seq) == ("removed", 4)
    assert problem.message == "entry 4 was removed"


def test_a_deleted_first_entry_is_detected(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 3)
    store.delete_document(NAMESPACE, entry_key(1), version=_doc(store, 1).version)
    problem = log.verify().problem
    assert problem is not None and (problem.kind, problem.seq) == ("removed", 1)


def test_deleted_and_renumbered_entries_are_detected(store: DocumentStore) -> None:
    """Entry 3 removed and 4..6 moved down one number with fresh seq and hash: 3's prev_hash gives it away."""
    log = AuditLog(store)
    _fill(log, 6)
    values = {seq: dict(_doc(store, seq).value) for seq in range(3, 7)}
    for seq in range(3, 6):
        moved = dict(values[seq + 1], seq=seq)
        moved["hash"] = entry_hash(moved)
        _rewrite(store, seq, moved)
    store.delete_document(NAMESPACE, entry_key(6), version=_doc(store, 6).version)
    problem = log.verify().problem
    assert problem is not None and (problem.kind, problem.seq) == ("inserted", 3)


def test_two_swapped_entries_are_detected(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 6)
    two, five = dict(_doc(store, 2).value), dict(_doc(store, 5).value)
    _rewrite(store, 2, five)
    _rewrite(store, 5, two)
    problem = log.verify().problem
    assert problem is not None and (problem.kind, problem.seq) == ("reordered", 2)


def test_a_truncated_tail_is_detected_through_the_head(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 6)
    for seq in (6, 5):
        store.delete_document(NAMESPACE, entry_key(seq), version=_doc(store, seq).version)
    report = log.verify()
    assert report.problem is not None and (report.problem.kind, report.problem.seq) == ("truncated", 5)
    assert report.entries == 4


def test_a_removed_head_is_reported(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 2)
    head = store.get_document(NAMESPACE, HEAD_KEY)
    assert head is not None
    store.delete_document(NAMESPACE, HEAD_KEY, version=head.version)
    problem = log.verify().problem
    assert problem is not None and problem.kind == "head"


def test_an_inserted_foreign_document_is_detected(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 3)
    store.put_document(NAMESPACE, "e/00000000000x", {"note": "not an entry"})
    problem = log.verify().problem
    assert problem is not None and problem.kind == "inserted"


def test_a_whole_rewritten_chain_passes_unless_anchored(store: DocumentStore) -> None:
    """The limit decision 1509 names: no secret in the hashes, so whoever can write the store can rebuild
    the chain and the head. A hash kept elsewhere (the anchor) catches it."""
    log = AuditLog(store)
    _fill(log, 5)
    kept = log.verify()
    prev = GENESIS_HASH
    for seq in range(1, 6):
        value = dict(_doc(store, seq).value, prev_hash=prev)
        if seq == 2:
            value["action"] = "nothing-happened"
        value["hash"] = entry_hash(value)
        _rewrite(store, seq, value)
        prev = value["hash"]
    head = store.get_document(NAMESPACE, HEAD_KEY)
    assert head is not None
    store.put_document(NAMESPACE, HEAD_KEY, dict(head.value, hash=prev), version=head.version)
    assert log.verify().ok
    problem = log.verify(anchor=(kept.last_seq, kept.last_hash)).problem
    assert problem is not None and (problem.kind, problem.seq) == ("edited", 5)
    assert log.verify(anchor=(1, _doc(store, 1).value["hash"])).ok
    beyond = log.verify(anchor=(9, kept.last_hash)).problem
    assert beyond is not None and beyond.kind == "truncated"


# -- reading and exporting -------------------------------------------------------------------------------------


def _clocked(store: DocumentStore, hours: int) -> tuple[AuditLog, datetime]:
    base = datetime(2026, 3, 1, tzinfo=UTC)
    moments = iter(base + timedelta(hours=h) for h in range(hours))
    log = AuditLog(store, clock=lambda: next(moments))
    for h in range(hours):
        log.append("run", f"h{h}", "allowed", caller=ALICE)
    return log, base


def test_entries_between_two_times(store: DocumentStore) -> None:
    log, base = _clocked(store, 30)
    found = list(log.entries(since=base + timedelta(hours=10), until=base + timedelta(hours=20)))
    assert [e.resource for e in found] == [f"h{h}" for h in range(10, 20)]
    assert [e.seq for e in log.entries(since=base + timedelta(hours=28))] == [29, 30]
    assert list(log.entries(since=base + timedelta(days=5))) == []
    assert len(list(log.entries(until=base))) == 0
    page = log.page(since=base + timedelta(hours=3), limit=4)
    assert [e.seq for e in page] == [4, 5, 6, 7]
    assert [e.seq for e in log.page(after_seq=page[-1].seq, limit=2)] == [8, 9]


def test_a_gap_in_the_chain_does_not_hide_entries_by_time(store: DocumentStore) -> None:
    log, base = _clocked(store, 12)
    store.delete_document(NAMESPACE, entry_key(6), version=_doc(store, 6).version)
    found = [e.seq for e in log.entries(since=base + timedelta(hours=4))]
    assert found == [5, 7, 8, 9, 10, 11, 12]


def test_export_jsonl_round_trips_and_csv_has_stable_columns(store: DocumentStore) -> None:
    log = AuditLog(store)
    _fill(log, 3)
    log.append("policy.set", "=HYPERLINK(1)", "denied", caller=ALICE, detail={"why": "-1+1", "n": 2})
    out = io.StringIO()
    assert write_export(log.entries(), out, "jsonl") == 4
    lines = out.getvalue().splitlines()
    assert [list(json.loads(line)) for line in lines] == [list(COLUMNS)] * 4
    assert [AuditEntry.from_dict(json.loads(line)) for line in lines] == list(log.entries())
    assert all(entry_hash(json.loads(line)) == json.loads(line)["hash"] for line in lines)
    out = io.StringIO()
    assert write_export(log.entries(), out, "csv") == 4
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == list(COLUMNS)
    last = dict(zip(COLUMNS, rows[-1], strict=True))
    assert last["resource"] == "'=HYPERLINK(1)"  # no formula for a spreadsheet to run
    assert json.loads(last["detail"]) == {"n": 2, "why": "-1+1"}
    assert last["seq"] == "4" and last["actor"] == "alice"
    with pytest.raises(ValidationFailed):
        write_export([], io.StringIO(), "xml")


# -- bounds and secrets (properties) ---------------------------------------------------------------------------

TEXT = st.text(max_size=700)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    TEXT,
    st.lists(st.integers(), max_size=3),
)
DETAIL = st.dictionaries(st.text(max_size=80), SCALAR, max_size=24)
CALLER = st.one_of(
    st.none(),
    st.builds(
        Caller,
        name=TEXT,
        kind=st.sampled_from(["user", "service"]),
        role=st.sampled_from(["viewer", "operator", "admin"]),
        team=TEXT,
        address=st.one_of(st.none(), TEXT),
    ),
)
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEY = "rvk_0123456789abcdef_" + "S" * 43


@PROPERTY
@given(
    action=TEXT,
    resource=TEXT,
    outcome=st.sampled_from(["allowed", "denied", "failed", "error"]),
    caller=CALLER,
    request_id=st.one_of(st.none(), TEXT),
    detail=DETAIL,
)
def test_any_input_makes_a_bounded_entry_that_verifies(
    action: str,
    resource: str,
    outcome: str,
    caller: Caller | None,
    request_id: str | None,
    detail: dict[str, Any],
) -> None:
    store = MemoryDocumentStore()
    log = AuditLog(store)
    log.append("first", "x", "allowed")
    entry = log.append(action, resource, outcome, caller=caller, request_id=request_id, detail=detail)
    stored = _doc(store, 2).value
    assert stored == entry.as_dict()
    assert len(encode_value(stored).encode()) <= MAX_VALUE_BYTES // 2
    assert len(entry.resource) <= 512 and len(entry.action) <= 64
    assert all(len(k) <= 64 for k in entry.detail) and len(entry.detail) <= 17
    assert AuditEntry.from_dict(json.loads(json.dumps(stored))) == entry
    assert log.verify().ok


def test_the_largest_entry_fits_a_document() -> None:
    wide = "💥" * 2000  # 4 bytes each in UTF-8
    caller = Caller(wide, wide, wide, wide, address=wide)
    store = MemoryDocumentStore()
    detail = {f"{i}{wide}": wide for i in range(40)}
    AuditLog(store).append(wide, wide, "error", caller=caller, request_id=wide, detail=detail)
    size = len(encode_value(_doc(store, 1).value).encode())
    assert 8 * 1024 < size <= MAX_VALUE_BYTES // 2


@PROPERTY
@given(prefix=TEXT, name=st.sampled_from(["token", "X-Runvoy-TOTP", "password", "api_key", "Authorization"]))
def test_secrets_never_reach_an_entry(prefix: str, name: str) -> None:
    store = MemoryDocumentStore()
    entry = AuditLog(store).append(
        f"{prefix}{KEY}",
        f"key/{KEY}",
        "failed",
        detail={name: "hunter2-" + KEY, "note": f"{prefix} {KEY}"},
        request_id=KEY,
    )
    text = encode_value(_doc(store, 1).value)
    assert "S" * 43 not in text and "hunter2" not in text
    assert entry.detail[name] == "[redacted]"
    assert "rvk_0123456789abcdef_" in entry.resource  # the key id stays: which key was used is audit data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.integers(2, 12),
    data=st.data(),
    tamper=st.sampled_from(["edit", "delete", "swap", "truncate", "rehash-edit"]),
)
def test_any_tampering_is_detected(size: int, data: st.DataObject, tamper: str) -> None:
    store = MemoryDocumentStore()
    log = AuditLog(store)
    _fill(log, size)
    seq = data.draw(st.integers(1, size), label="seq")
    value = dict(_doc(store, seq).value)
    if tamper == "edit":
        field = data.draw(st.sampled_from([c for c in COLUMNS if c not in ("seq", "hash")]), label="field")
        value[field] = "changed" if value[field] != "changed" else "changed!"
        _rewrite(store, seq, value)
    elif tamper == "rehash-edit":
        value["action"] += "!"
        value["hash"] = entry_hash(value)
        _rewrite(store, seq, value)
    elif tamper == "delete":
        store.delete_document(NAMESPACE, entry_key(seq), version=_doc(store, seq).version)
    elif tamper == "swap":
        other = data.draw(st.integers(1, size).filter(lambda s: s != seq), label="other")
        _rewrite(store, seq, dict(_doc(store, other).value))
        _rewrite(store, other, value)
    else:
        for gone in range(seq, size + 1):
            store.delete_document(NAMESPACE, entry_key(gone), version=_doc(store, gone).version)
    report = log.verify()
    assert not report.ok
    assert report.problem is not None and 1 <= report.problem.seq <= size
