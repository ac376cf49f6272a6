"""Fill a local RUNVOY_HOME with N realistic ended runs, fast, for the size benchmarks (issue 14 item 2).

    python3 benchmarks/seed.py HOME RUNS        # e.g. benchmarks/seed.py /tmp/home 100000

Each run is an ``Execution`` built by runvoy's own model (so the records are in the schema of the code
measured), ended in the last 60 days: providers local (with cloud equivalents) and aws; one user;
``team``/``env`` labels; some under the locks ``deploy``/``etl``; succeeded, failed or timed out. Each gets its
three events and is counted into the cost rollups; a few lock records (released, one held by the newest run of
its lock) are written too. Rows go in through batched inserts into the store's own tables (state.db, opened
with its schema), one transaction per batch: 100,000 runs take seconds, not the hours of starting them.
The same (home, runs) gives the same records: the random choices come from a fixed seed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

BATCH = 5_000
# a local store is one machine's: one user, local runs and those of a provider that keeps no records of its
# own (aws stands in for it); labels and locks vary as in a team's scripts. 2 x 9 label sets x 3 lock choices
# = 54 bucket identities, which the cost rollups' running totals are proportional to.
PROVIDERS = ("local", "aws")
USERS = ("alice",)
TEAMS = ("data", "web", "ml")
ENVS = ("prod", "dev")
LOCKS = ("deploy", "etl")
COMMANDS = ("make test", "python train.py", "pytest -q", "./deploy.sh", "dbt run")
SPAN = timedelta(days=60)
RNG_SEED = 14
IDENTITIES = 2 * 9 * 3


class _Templates:
    """One validated record of each kind, copied with new values for every run: validating 100,000 records
    would take most of the seeding time, and the copies hold the same types the validation would give."""

    def __init__(self) -> None:
        from runvoy_core.models import Cost, Execution, ExecutionRequest, Status

        self.request = ExecutionRequest(command="true")
        self.cost = Cost(provider="local")
        self.execution = Execution(
            id="0" * 12, provider="local", request=self.request, status=Status.SUCCEEDED
        )


RATES = {"aws": Decimal("0.0000137"), "gcp": Decimal("0.0000180"), "azure": Decimal("0.0000150")}


def _execution(rng: random.Random, now: datetime, index: int, runs: int, templates: _Templates) -> Any:
    from runvoy_core.models import Status

    # spread evenly over SPAN, newest last, with a little jitter so created_at values rarely tie
    created = now - SPAN + SPAN * (index + rng.random()) / max(runs, 1)
    started = created + timedelta(seconds=rng.uniform(0.2, 5))
    finished = min(started + timedelta(seconds=rng.randint(1, 3600)), now)
    seconds = max(1, round((finished - started).total_seconds()))
    # the bucket identity cycles with the index, so every size (from 54 runs in the period up) holds the same
    # 54 identities: a team's label sets do not multiply with its number of runs, and the rollups' cost is
    # per identity (decision 1405)
    identity = index % IDENTITIES
    provider = PROVIDERS[identity % 2]
    label_set = (identity // 2) % 9
    labels = {"team": TEAMS[label_set % 3]}
    if label_set >= 3:
        labels["env"] = ENVS[label_set // 3 - 1]
    lock = (None, *LOCKS)[identity // 18]
    status = rng.choices((Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT), weights=(90, 8, 2), k=1)[0]
    billed = Decimal(seconds)
    if provider == "local":
        equivalents = {name: (billed * r).quantize(Decimal("0.000001")) for name, r in RATES.items()}
        cost = templates.cost.model_copy(update={"billed_seconds": billed, "equivalents": equivalents})
    else:
        total = (billed * RATES[provider]).quantize(Decimal("0.000001"))
        cost = templates.cost.model_copy(
            update={
                "provider": provider,
                "region": "us-east-1",
                "billed_seconds": billed,
                "vcpu": total,
                "total": total,
            }
        )
    run_id = f"{rng.getrandbits(48):012x}"
    request = templates.request.model_copy(
        update={"command": rng.choice(COMMANDS), "labels": labels, "lock": lock}
    )
    return templates.execution.model_copy(
        update={
            "id": run_id,
            "provider": provider,
            "request": request,
            "status": status,
            "exit_code": 0 if status is Status.SUCCEEDED else 1,
            "reason": None if status is Status.SUCCEEDED else f"{status.value}",
            "created_at": created,
            "started_at": started,
            "finished_at": finished,
            "billed_start": started,
            "billed_stop": finished,
            "task_ref": None if provider != "local" else f"local:{run_id}",
            "user": rng.choice(USERS),
            "host": "bench-host",
            "lock": lock,
            "fence": index + 1 if lock else None,
            "cost": cost,
            "version": 3,
        }
    )


def _events(execution: Any) -> list[str]:
    from runvoy_core.models import Status, StatusChange

    return [
        StatusChange(at=execution.created_at, status=Status.PENDING, event="created").model_dump_json(),
        StatusChange(at=execution.started_at, status=Status.RUNNING, event="started").model_dump_json(),
        StatusChange(
            at=execution.finished_at,
            status=execution.status,
            event="finished",
            detail={"exit_code": execution.exit_code},
        ).model_dump_json(),
    ]


def _sortable(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _write_batch(conn: Any, batch: list[Any]) -> None:
    from runvoy_core.cost.rollups import bucket_of
    from runvoy_core.providers.local import db
    from runvoy_core.providers.local.costs import count_into_rollups

    with db.write(conn):
        conn.executemany(
            "INSERT INTO executions (id, created_at, status, version, data) VALUES (?, ?, ?, ?, ?)",
            [(e.id, _sortable(e.created_at), e.status.value, e.version, e.model_dump_json()) for e in batch],
        )
        conn.executemany(
            "INSERT INTO execution_labels (execution_id, key, value, created_at) VALUES (?, ?, ?, ?)",
            [(e.id, k, v, _sortable(e.created_at)) for e in batch for k, v in e.request.labels.items()],
        )
        conn.executemany(
            "INSERT INTO events (execution_id, data) VALUES (?, ?)",
            [(e.id, data) for e in batch for data in _events(e)],
        )
        # the store's own counting, so the buckets are exactly the ones a run's end would have written
        count_into_rollups(conn, [(e.id, bucket_of(e)) for e in batch])


def _write_locks(conn: Any, newest_by_lock: dict[str, Any], now: datetime) -> None:
    import json

    from runvoy_core.models import LockHolder, LockRecord, LockState
    from runvoy_core.providers.local import db

    records = []
    for name in (*LOCKS, "nightly", "release"):
        holder = newest_by_lock.get(name)
        if name == LOCKS[0] and holder is not None:
            # held by its newest run, as if that run were still finishing
            record = LockRecord(
                name=name,
                state=LockState.HELD,
                owner_id=f"owner-{holder.id}",
                holder=LockHolder(
                    execution_id=holder.id,
                    provider=holder.provider,
                    user=holder.user,
                    host=holder.host,
                    command=holder.request.command,
                    acquired_at=now - timedelta(minutes=5),
                ),
                fence=holder.fence or 1,
            )
        else:
            record = LockRecord(name=name, state=LockState.RELEASED, fence=holder.fence if holder else 1)
        records.append((name, json.dumps(record.model_dump(mode="json"))))
    with db.write(conn):
        conn.executemany(
            "INSERT INTO locks (name, version, value) VALUES (?, 1, ?) ON CONFLICT (name) DO NOTHING", records
        )


def seed_local(home: Path, runs: int) -> None:
    """Add ``runs`` ended runs (with events and cost rollups) and a few locks to the local store in ``home``."""
    from runvoy_core.providers.local import db

    if runs < 0:
        raise ValueError("runs must be >= 0")
    home = Path(home)
    rng = random.Random(f"{RNG_SEED}:{runs}")
    now = datetime.now(UTC)
    conn = db.connect_state(home)
    # a scratch home: losing it to a power cut costs a re-seed, so skip waiting for the disk
    conn.execute("PRAGMA synchronous=OFF")
    newest_by_lock: dict[str, Any] = {}
    try:
        batch: list[Any] = []
        templates = _Templates()
        for index in range(runs):
            execution = _execution(rng, now, index, runs, templates)
            batch.append(execution)
            if execution.lock:
                newest_by_lock[execution.lock] = execution
            if len(batch) >= BATCH:
                _write_batch(conn, batch)
                batch = []
        if batch:
            _write_batch(conn, batch)
        _write_locks(conn, newest_by_lock, now)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path, help="the RUNVOY_HOME to fill (created if missing)")
    parser.add_argument("runs", type=int, help="how many ended runs to add (0 to 1,000,000)")
    args = parser.parse_args(argv)
    if not 0 <= args.runs <= 1_000_000:
        parser.error("runs must be between 0 and 1,000,000")
    started = time.perf_counter()
    seed_local(args.home, args.runs)
    print(
        f"seeded {args.runs} runs into {args.home} in {time.perf_counter() - started:.1f} s", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
