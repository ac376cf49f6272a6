"""Cost rollups: hour buckets of ended runs' costs, kept up to date when a run ends.

``cost report`` and budget checks read these buckets instead of listing every run of a period, so they cost
the same with 100 or 100,000 stored runs. A bucket is one hour (UTC, the hour the run ended) of one
combination of provider, user, lock, labels and currency; stores keep them keyed by ``bucket_key`` and count
each execution id once (``CostRollups`` in ``runvoy_core.ports.optional``).

Standard library only: the runner imports this on every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runvoy_core.models import Execution

_KEY_HASH_CHARS = 32
"""128 bits of sha256: collisions between buckets of one hour are out of reach."""


@dataclass(frozen=True)
class RollupRow:
    """One hour bucket (``runs == 1`` for the row of a single run). ``labels`` is sorted by key."""

    hour: datetime
    provider: str
    user: str | None
    lock: str | None
    labels: tuple[tuple[str, str], ...]
    currency: str
    runs: int
    billed_seconds: Decimal
    total: Decimal
    equivalents: dict[str, Decimal] = field(default_factory=dict, hash=False)


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour containing ``moment`` (a naive moment is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_key(moment: datetime) -> str:
    """The hour part that starts every ``bucket_key``: sorts like the hours, so a store can select a range
    of hours with ``bucket_key >= hour_key(since)``."""
    return floor_hour(moment).strftime("%Y%m%d%H")


def bucket_of(execution: Execution) -> RollupRow:
    """The one-run row of an ended execution: the hour it finished (created, when it never finished)."""
    cost = execution.cost
    moment = execution.finished_at or execution.created_at
    return RollupRow(
        hour=floor_hour(moment),
        provider=execution.provider,
        user=execution.user,
        # a lock's slots count as the lock, as in the report
        lock=execution.request.lock or execution.lock,
        labels=tuple(sorted(execution.request.labels.items())),
        currency=cost.currency if cost is not None else "USD",
        runs=1,
        billed_seconds=Decimal(cost.billed_seconds) if cost is not None else Decimal(0),
        total=Decimal(cost.total) if cost is not None else Decimal(0),
        equivalents={k: Decimal(v) for k, v in cost.equivalents.items()} if cost is not None else {},
    )


def _identity(row: RollupRow) -> list[Any]:
    return [row.provider, row.user, row.lock, [list(pair) for pair in row.labels], row.currency]


def bucket_key(row: RollupRow) -> str:
    """A stable id of the row's bucket: ``<YYYYMMDDHH>-<hash of provider, user, lock, labels, currency>``.

    Only ``[0-9a-f-]`` characters and 43 long, so it is safe as a SQLite key, a DynamoDB sort key, a GCS
    object name part and an Azure RowKey; sorts by hour first."""
    import hashlib  # here: loading OpenSSL is the dearest part of importing this module

    identity = json.dumps(_identity(row), separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:_KEY_HASH_CHARS]
    return f"{hour_key(row.hour)}-{digest}"


def combine(a: RollupRow, b: RollupRow) -> RollupRow:
    """The sum of two rows of the same bucket."""
    equivalents = dict(a.equivalents)
    for provider, amount in b.equivalents.items():
        equivalents[provider] = equivalents.get(provider, Decimal(0)) + amount
    return replace(
        a,
        runs=a.runs + b.runs,
        billed_seconds=a.billed_seconds + b.billed_seconds,
        total=a.total + b.total,
        equivalents=equivalents,
    )


def subtract(a: RollupRow, b: RollupRow) -> RollupRow:
    """``a`` less ``b`` (running totals of one bucket identity: what was added between them)."""
    return replace(
        a,
        runs=a.runs - b.runs,
        billed_seconds=a.billed_seconds - b.billed_seconds,
        total=a.total - b.total,
        equivalents={k: v - b.equivalents.get(k, Decimal(0)) for k, v in a.equivalents.items()},
    )


def identity_key(row: RollupRow) -> str:
    """The part of ``bucket_key`` without the hour: the same for every hour of one provider, user, lock,
    labels and currency."""
    return bucket_key(row).partition("-")[2]


def merge(rows: Iterable[RollupRow]) -> list[RollupRow]:
    """One row per bucket (rows of the same bucket summed), sorted by bucket key."""
    merged: dict[str, RollupRow] = {}
    for row in rows:
        key = bucket_key(row)
        found = merged.get(key)
        merged[key] = row if found is None else combine(found, row)
    return [merged[key] for key in sorted(merged)]


def row_to_dict(row: RollupRow) -> dict[str, Any]:
    """A JSON-ready dict (decimals as strings, so nothing is lost to floats)."""
    return {
        "hour": floor_hour(row.hour).isoformat(),
        "provider": row.provider,
        "user": row.user,
        "lock": row.lock,
        "labels": [[k, v] for k, v in row.labels],
        "currency": row.currency,
        "runs": row.runs,
        "billed_seconds": str(row.billed_seconds),
        "total": str(row.total),
        "equivalents": {k: str(v) for k, v in sorted(row.equivalents.items())},
    }


def row_from_dict(data: Mapping[str, Any]) -> RollupRow:
    return RollupRow(
        hour=floor_hour(datetime.fromisoformat(data["hour"])),
        provider=str(data["provider"]),
        user=data.get("user"),
        lock=data.get("lock"),
        labels=tuple(sorted((str(k), str(v)) for k, v in data.get("labels", []))),
        currency=str(data.get("currency", "USD")),
        runs=int(data["runs"]),
        billed_seconds=Decimal(str(data["billed_seconds"])),
        total=Decimal(str(data["total"])),
        equivalents={str(k): Decimal(str(v)) for k, v in (data.get("equivalents") or {}).items()},
    )


def row_to_json(row: RollupRow) -> str:
    """Compact JSON text of ``row_to_dict``."""
    return json.dumps(row_to_dict(row), separators=(",", ":"), sort_keys=True)


def row_from_json(data: str | bytes | Mapping[str, Any]) -> RollupRow:
    """The row of ``row_to_json``'s text (or of its already parsed dict)."""
    if isinstance(data, Mapping):
        return row_from_dict(data)
    return row_from_dict(json.loads(data))
