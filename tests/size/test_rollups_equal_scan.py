"""Cost rollups give the report rows a scan of the executions gives (issue 14 item 2, decision 1401).

Hypothesis draws sets of ended runs (providers, users, labels, locks and lock slots, hours, costs with and
without equivalents, runs without a cost), stores them in a real LocalStore, offers some of them again to
``add_to_rollups`` (a repeat must count nothing) and compares, for every ``--by``, the rows built from the
store's buckets with ``build_report`` over the executions themselves.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.cost.report import GROUPINGS, build_report, report_from_rollups
from runvoy_core.cost.rollups import (
    bucket_key,
    bucket_of,
    merge,
    row_from_json,
    row_to_json,
)
from runvoy_core.models import Cost, Execution, ExecutionRequest, Status
from runvoy_core.providers.local.store import LocalStore

BASE = datetime(2026, 11, 1, tzinfo=UTC)

money = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
costs = st.one_of(
    st.none(),
    st.builds(
        lambda provider, total, seconds, eq: Cost(
            provider=provider, total=total, billed_seconds=seconds, equivalents=eq
        ),
        st.sampled_from(["aws", "gcp", "local"]),
        money,
        st.decimals(min_value=0, max_value=86400, places=3, allow_nan=False, allow_infinity=False),
        st.dictionaries(st.sampled_from(["aws", "gcp", "azure"]), money, max_size=3),
    ),
)


@st.composite
def executions(draw: st.DrawFn, index: int) -> Execution:
    created = BASE + timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)), microseconds=index)
    finished = draw(
        st.one_of(st.none(), st.integers(0, 60 * 30).map(lambda m: created + timedelta(minutes=m)))
    )
    lock = draw(st.sampled_from([None, "deploy", "etl"]))
    slot = draw(st.sampled_from([None, "#1", "#2"])) if lock else None
    return Execution(
        id=f"{index:012x}",
        provider=draw(st.sampled_from(["local", "aws", "gcp"])),
        request=ExecutionRequest(
            command="true",
            lock=lock,
            labels=draw(
                st.dictionaries(
                    st.sampled_from(["team", "env", "a.b/c"]), st.sampled_from(["x", "y", "data"]), max_size=3
                )
            ),
        ),
        status=draw(st.sampled_from([Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT, Status.LOST])),
        created_at=created,
        finished_at=finished,
        user=draw(st.sampled_from([None, "alice", "bob"])),
        lock=(lock + slot) if lock and slot else lock,
        cost=draw(costs),
    )


runs_sets = st.integers(0, 25).flatmap(lambda n: st.tuples(*[executions(i) for i in range(n)]))


def _dicts(rows: list) -> list[dict]:
    """The rows as the report shows them, amounts compared as numbers (a difference of running totals may
    keep more trailing zeros than a sum: 0.000000 and 0 are the same amount)."""
    out = []
    for row in rows:
        data = row.as_dict()
        for name in ("billed_seconds", "total"):
            data[name] = Decimal(data[name])
        data["equivalents"] = {k: Decimal(v) for k, v in data["equivalents"].items()}
        out.append(data)
    return out


@settings(max_examples=60, deadline=None)
@given(runs=runs_sets, repeats=st.lists(st.integers(0, 24), max_size=10))
def test_rollups_give_the_rows_of_a_scan(runs: tuple[Execution, ...], repeats: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp))
        try:
            for execution in runs:
                store.create(execution)
            for i in repeats:
                if i < len(runs):
                    # the store counted it when the ended record was written: a second count adds nothing
                    assert store.add_to_rollups(runs[i]) is False
            buckets = store.rollups(BASE - timedelta(days=1))
        finally:
            store.close()
    assert sum(b.runs for b in buckets) == len(runs)
    for by in GROUPINGS:
        assert _dicts(report_from_rollups(buckets, by)) == _dicts(build_report(runs, by)), by


@settings(max_examples=40, deadline=None)
@given(
    runs=runs_sets,
    since_minutes=st.integers(0, 60 * 24 * 4),
    span_minutes=st.one_of(st.none(), st.integers(1, 60 * 24 * 4)),
)
def test_a_range_of_hours_gives_the_rows_of_the_runs_that_ended_in_it(
    runs: tuple[Execution, ...], since_minutes: int, span_minutes: int | None
) -> None:
    """Whole days come from the day buckets, partial ones from the hour buckets: together, exactly the runs
    whose hour is in [hour of since, until)."""
    since = BASE + timedelta(minutes=since_minutes)
    until = None if span_minutes is None else since + timedelta(minutes=span_minutes)
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp))
        try:
            for execution in runs:
                store.create(execution)
            buckets = store.rollups(since, until)
        finally:
            store.close()
    start = since.replace(minute=0, second=0, microsecond=0)
    inside = [e for e in runs if bucket_of(e).hour >= start and (until is None or bucket_of(e).hour < until)]
    for by in GROUPINGS:
        assert _dicts(report_from_rollups(buckets, by)) == _dicts(build_report(inside, by)), by


@settings(max_examples=40, deadline=None)
@given(runs=runs_sets, since_minutes=st.integers(0, 60 * 24 * 4))
def test_running_totals_give_the_rows_of_the_runs_since_an_hour(
    runs: tuple[Execution, ...], since_minutes: int
) -> None:
    """The runs are stored in the drawn order, so hours are often added before earlier ones: the running
    totals of later hours must grow with them."""
    since = BASE + timedelta(minutes=since_minutes)
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp))
        try:
            for execution in runs:
                store.create(execution)
            totals = store.cost_totals(since)
            days = store.day_totals(since)
        finally:
            store.close()
    start = since.replace(minute=0, second=0, microsecond=0)
    inside = [e for e in runs if bucket_of(e).hour >= start]
    assert len({bucket_key(t) for t in totals}) == len(totals)  # one row per identity
    for by in GROUPINGS:
        if by != "day":
            assert _dicts(report_from_rollups(totals, by)) == _dicts(build_report(inside, by)), by
    assert _dicts(report_from_rollups(days, "day")) == _dicts(build_report(inside, "day"))
    assert all(d.user is None and d.lock is None and d.labels == () for d in days)


@settings(max_examples=60, deadline=None)
@given(runs=runs_sets)
def test_merged_rows_round_trip_and_keep_their_keys(runs: tuple[Execution, ...]) -> None:
    rows = [bucket_of(e) for e in runs]
    merged = merge(rows)
    assert sum(r.runs for r in merged) == len(runs)
    assert sum((r.total for r in merged), Decimal(0)) == sum((r.total for r in rows), Decimal(0))
    for row in merged:
        key = bucket_key(row)
        assert all(c.isalnum() or c in "._=-" for c in key) and len(key) <= 64
        assert row_from_json(row_to_json(row)) == row
        assert bucket_key(row_from_json(row_to_json(row))) == key
    assert len({bucket_key(r) for r in merged}) == len(merged)


def test_rollups_select_hours_from_the_hour_of_since() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp))
        try:
            for i, minute in enumerate((0, 59, 60, 125)):
                at = BASE + timedelta(minutes=minute)
                store.create(
                    Execution(
                        id=f"{i:012x}",
                        provider="aws",
                        request=ExecutionRequest(command="true"),
                        status=Status.SUCCEEDED,
                        created_at=at,
                        finished_at=at,
                        cost=Cost(provider="aws", total=Decimal(1)),
                    )
                )
            # a since that starts mid-hour counts from the start of that hour
            assert sum(b.runs for b in store.rollups(BASE + timedelta(minutes=30))) == 4
            assert sum(b.runs for b in store.rollups(BASE + timedelta(minutes=61))) == 2
            until = store.rollups(BASE, BASE + timedelta(minutes=90))  # hours starting before 01:30
            assert sum(b.runs for b in until) == 3
            assert sum(b.runs for b in store.rollups(BASE, BASE + timedelta(hours=1))) == 2
        finally:
            store.close()
