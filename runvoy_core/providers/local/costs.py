"""The local store's cost rollups in state.db (decisions 1401, 1404): hour and day buckets, the ids counted,
and running totals per bucket identity. Imported only by what counts or reads costs, so ``status`` and
``list`` load none of it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from runvoy_core.cost.rollups import (
    RollupRow,
    bucket_key,
    bucket_of,
    combine,
    floor_hour,
    hour_key,
    row_from_json,
    row_to_json,
    subtract,
)
from runvoy_core.models import TERMINAL_STATUSES, Execution
from runvoy_core.providers.local import db

BACKFILL_BATCH = 500
_TERMINAL = tuple(sorted(s.value for s in TERMINAL_STATUSES))


def count_ended(conn: sqlite3.Connection, execution: Execution) -> bool:
    """Count one ended run (inside the caller's write transaction); False when it was counted before."""
    return bool(count_into_rollups(conn, [(execution.id, bucket_of(execution))]))


def read_rollups(conn: sqlite3.Connection, since: datetime, until: datetime | None = None) -> list[RollupRow]:
    """Every bucket whose hour is >= the hour of ``since`` (and < ``until``). The whole days of the range
    come as one row per day and bucket identity (``hour`` = 00:00), its partial days as hour rows: a
    month is read as ~30 rows per identity, not ~720. Each part is a range of a primary key."""
    backfill(conn)
    start = floor_hour(since)
    end: datetime | None = None
    if until is not None:
        # hours that start before `until`: up to (not including) the hour after the last such hour
        exact = until if until.tzinfo is not None else until.replace(tzinfo=UTC)
        end = floor_hour(exact)
        end = end if end == exact else end + timedelta(hours=1)
        if end <= start:
            return []
    first_day = _day_of(start) if start == _day_of(start) else _day_of(start) + timedelta(days=1)
    last_day = None if end is None else _day_of(end)
    parts: list[tuple[str, datetime, datetime | None]] = []
    if last_day is not None and first_day >= last_day:
        parts.append(("cost_rollups", start, end))  # within one day or two partial ones: hours only
    else:
        if start < first_day:
            parts.append(("cost_rollups", start, first_day))
        parts.append(("cost_rollups_daily", first_day, last_day))
        if last_day is not None and end is not None and last_day < end:
            parts.append(("cost_rollups", last_day, end))
    found: list[RollupRow] = []
    for table, low, high in parts:
        sql = f"SELECT data FROM {table} WHERE bucket_key >= ?"
        params: list[Any] = [hour_key(low)]
        if high is not None:
            sql += " AND bucket_key < ?"
            params.append(hour_key(high))
        found.extend(row_from_json(r[0]) for r in conn.execute(sql, params))
    return found


def read_cost_totals(conn: sqlite3.Connection, since: datetime) -> list[RollupRow]:
    """One row per bucket identity: what its runs that ended in the hour of ``since`` or later cost
    (``hour`` = that hour). Reads two running totals per identity, however long the period and however
    many runs it holds (``CostTotals``)."""
    backfill(conn)
    start = floor_hour(since)
    rows = conn.execute(
        "SELECT i.data, i.eq_runs,"
        " (SELECT c.data FROM cost_cumulative c WHERE c.identity_key = i.identity_key AND c.hour_key < ?1"
        "  ORDER BY c.hour_key DESC LIMIT 1),"
        " (SELECT c.eq_runs FROM cost_cumulative c WHERE c.identity_key = i.identity_key"
        "  AND c.hour_key < ?1 ORDER BY c.hour_key DESC LIMIT 1)"
        " FROM cost_identities i",
        (hour_key(start),),
    ).fetchall()
    found: list[RollupRow] = []
    for data, eq_runs, before, before_eq in rows:
        earlier = None if before is None else (row_from_json(before), json.loads(before_eq))
        found.extend(_difference((row_from_json(data), json.loads(eq_runs)), earlier, start))
    return found


def read_day_totals(conn: sqlite3.Connection, since: datetime) -> list[RollupRow]:
    """One row per day and provider (user, lock and labels left out) for the runs that ended since the
    hour of ``since``; the first day's row is dated ``since``'s hour. Reads one running total per
    provider and day boundary, however many runs and identities (``CostTotals``)."""
    backfill(conn)
    start = floor_hour(since)
    bounds = [start]
    day = _day_of(start) + timedelta(days=1)
    today = _day_of(floor_hour(datetime.now(UTC)))
    while day <= today:
        bounds.append(day)
        day += timedelta(days=1)
    found: list[RollupRow] = []
    for identity, data, eq_runs in conn.execute(
        "SELECT identity_key, data, eq_runs FROM cost_provider_identities"
    ).fetchall():
        ends: list[tuple[RollupRow, dict[str, int]] | None] = []
        for bound in bounds:
            row = conn.execute(
                "SELECT data, eq_runs FROM cost_provider_cumulative WHERE identity_key = ? AND hour_key < ?"
                " ORDER BY hour_key DESC LIMIT 1",
                (identity, hour_key(bound)),
            ).fetchone()
            ends.append(None if row is None else (row_from_json(row[0]), json.loads(row[1])))
        ends.append((row_from_json(data), json.loads(eq_runs)))
        for i, bound in enumerate(bounds):
            after, before = ends[i + 1], ends[i]
            if after is None:
                continue
            found.extend(_difference(after, before, bound))
    return found


def backfill(conn: sqlite3.Connection) -> None:
    """Once, after the upgrade from schema 1: count the runs that ended before rollups existed."""
    if conn.execute("SELECT 1 FROM meta WHERE key = 'rollups_backfill'").fetchone() is None:
        return
    count_uncounted(conn)
    with db.write(conn):
        conn.execute("DELETE FROM meta WHERE key = 'rollups_backfill'")


def count_uncounted(conn: sqlite3.Connection) -> list[str]:
    """Count every ended run that is not counted yet (oldest first, in batches); returns their ids. One
    read of the ids (an anti-join on two primary keys): only the missing records are parsed."""
    done: list[str] = []
    while True:
        batch = conn.execute(
            "SELECT data FROM executions WHERE status IN ({}) AND id NOT IN "
            "(SELECT execution_id FROM cost_counted) ORDER BY created_at LIMIT ?".format(
                ", ".join("?" for _ in _TERMINAL)
            ),
            (*_TERMINAL, BACKFILL_BATCH),
        ).fetchall()
        if not batch:
            return done
        with db.write(conn):
            ended = [Execution.model_validate_json(data) for (data,) in batch]
            done.extend(count_into_rollups(conn, [(e.id, bucket_of(e)) for e in ended]))


def _day_of(hour: datetime) -> datetime:
    return hour.replace(hour=0, minute=0, second=0, microsecond=0)


def count_into_rollups(conn: sqlite3.Connection, items: Iterable[tuple[str, RollupRow]]) -> set[str]:
    """Count one-run rows (``bucket_of``) into their hour bucket, their day's bucket and their identity's
    running totals, skipping the ids counted before; returns the ids counted now. Call inside a write
    transaction (``db.write``): the ids and the buckets change together or not at all. A batch is summed per
    bucket first (one upsert per bucket), which is what makes seeding and upgrades fast."""
    pending: dict[str, tuple[str, RollupRow]] = {}
    for execution_id, row in items:
        pending.setdefault(execution_id, (bucket_key(row), row))
    ids = list(pending)
    seen: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ", ".join("?" for _ in chunk)
        seen.update(
            r[0]
            for r in conn.execute(
                f"SELECT execution_id FROM cost_counted WHERE execution_id IN ({marks})", chunk
            )
        )
    fresh = [
        (execution_id, key, row) for execution_id, (key, row) in pending.items() if execution_id not in seen
    ]
    if not fresh:
        return set()
    conn.executemany(
        "INSERT INTO cost_counted (execution_id, bucket_key) VALUES (?, ?)", [(e, k) for e, k, _ in fresh]
    )
    hourly: dict[str, list[RollupRow]] = {}
    daily: dict[str, list[RollupRow]] = {}
    for _, key, row in fresh:
        hourly.setdefault(key, []).append(row)
        day = _day_of(row.hour)
        daily.setdefault(f"{hour_key(day)}-{key.partition('-')[2]}", []).append(row)
    _add_to_running_totals(conn, hourly)
    # the same per provider and currency only (user, lock and labels left out): `--by day` reads these
    by_provider: dict[str, list[RollupRow]] = {}
    keys: dict[tuple[datetime, str, str], str] = {}
    for _, _, row in fresh:
        reduced = replace(row, user=None, lock=None, labels=())
        ident = (reduced.hour, reduced.provider, reduced.currency)
        if ident not in keys:
            keys[ident] = bucket_key(reduced)
        by_provider.setdefault(keys[ident], []).append(reduced)
    _add_to_running_totals(conn, by_provider, prefix="cost_provider_")
    for table, groups in (("cost_rollups", hourly), ("cost_rollups_daily", daily)):
        for key, rows in groups.items():
            delta = _sum(rows)
            if table == "cost_rollups_daily":
                delta = replace(delta, hour=_day_of(delta.hour))
            found = conn.execute(f"SELECT data FROM {table} WHERE bucket_key = ?", (key,)).fetchone()
            total = delta if found is None else combine(row_from_json(found[0]), delta)
            conn.execute(
                f"INSERT INTO {table} (bucket_key, data) VALUES (?, ?) "
                "ON CONFLICT (bucket_key) DO UPDATE SET data = excluded.data",
                (key, row_to_json(total)),
            )
    return {e for e, _, _ in fresh}


def _sum(rows: list[RollupRow]) -> RollupRow:
    total = rows[0]
    for row in rows[1:]:
        total = combine(total, row)
    return total


def _eq_runs(rows: Iterable[RollupRow]) -> dict[str, int]:
    """How many runs gave each equivalent (a report shows an equivalent only when one of its runs had it)."""
    counts: dict[str, int] = {}
    for row in rows:
        for provider in row.equivalents:
            counts[provider] = counts.get(provider, 0) + row.runs
    return counts


def _plus(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}


def _add_to_running_totals(
    conn: sqlite3.Connection, hourly: dict[str, list[RollupRow]], prefix: str = "cost_"
) -> None:
    """Keep, per bucket identity, its all-time total (cost_identities) and its running total at the end of
    every hour it had runs (cost_cumulative), so the costs since any hour are one subtraction per identity
    (``cost_totals``). Runs end now, so an added hour is almost always the newest: the later running totals
    that must grow too are rare (a reconcile, an upgrade)."""
    identities: dict[str, tuple[RollupRow, dict[str, int]]] = {}
    # oldest hour first: the running totals of an hour build on those of the hours before it
    for key in sorted(hourly):
        hour, _, identity = key.partition("-")
        rows = hourly[key]
        delta = _sum(rows)
        eq = _eq_runs(rows)
        later = conn.execute(
            f"SELECT hour_key, data, eq_runs FROM {prefix}cumulative WHERE identity_key = ? AND hour_key > ?",
            (identity, hour),
        ).fetchall()
        for later_hour, data, eq_runs in later:
            conn.execute(
                f"UPDATE {prefix}cumulative SET data = ?, eq_runs = ? WHERE identity_key = ? AND hour_key = ?",
                (
                    row_to_json(combine(row_from_json(data), delta)),
                    json.dumps(_plus(json.loads(eq_runs), eq)),
                    identity,
                    later_hour,
                ),
            )
        base = conn.execute(
            f"SELECT data, eq_runs FROM {prefix}cumulative WHERE identity_key = ? AND hour_key <= ?"
            " ORDER BY hour_key DESC LIMIT 1",
            (identity, hour),
        ).fetchone()
        total = delta if base is None else replace(combine(row_from_json(base[0]), delta), hour=delta.hour)
        total_eq = eq if base is None else _plus(json.loads(base[1]), eq)
        conn.execute(
            f"INSERT INTO {prefix}cumulative (identity_key, hour_key, data, eq_runs) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (identity_key, hour_key) DO UPDATE SET data = excluded.data, eq_runs = excluded.eq_runs",
            (identity, hour, row_to_json(total), json.dumps(total_eq)),
        )
        known = identities.get(identity)
        if known is None:
            found = conn.execute(
                f"SELECT data, eq_runs FROM {prefix}identities WHERE identity_key = ?", (identity,)
            ).fetchone()
            known = (
                (delta, eq)
                if found is None
                else (
                    combine(row_from_json(found[0]), delta),
                    _plus(json.loads(found[1]), eq),
                )
            )
        else:
            known = (combine(known[0], delta), _plus(known[1], eq))
        identities[identity] = known
    conn.executemany(
        f"INSERT INTO {prefix}identities (identity_key, data, eq_runs) VALUES (?, ?, ?) "
        "ON CONFLICT (identity_key) DO UPDATE SET data = excluded.data, eq_runs = excluded.eq_runs",
        [(k, row_to_json(row), json.dumps(eq)) for k, (row, eq) in identities.items()],
    )


def _difference(
    after: tuple[RollupRow, dict[str, int]], before: tuple[RollupRow, dict[str, int]] | None, hour: datetime
) -> list[RollupRow]:
    """What was added between two running totals of one identity, dated ``hour``; nothing when no run was."""
    total, eq = after
    if before is not None:
        total = subtract(total, before[0])
        eq = {k: n - before[1].get(k, 0) for k, n in eq.items()}
    if total.runs <= 0:
        return []
    # an equivalent shows when one of the runs had it, as in a scan of the runs
    equivalents = {k: v for k, v in total.equivalents.items() if eq.get(k, 0) > 0}
    return [replace(total, hour=hour, equivalents=equivalents)]
