"""A worker process for the multi-process lock tests (run as a script, not collected by pytest).

python locks_worker.py counter HOME WORKDIR CYCLES LEASE   # CYCLES read-increment-write cycles under "counter"
python locks_worker.py hold HOME WORKDIR NAME LEASE         # hold NAME, renew, write fenced lines until refused
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from runvoy_core.errors import StaleFence
from runvoy_core.locks import LockManager, check_fence
from runvoy_core.models import LockHolder, OnConflict


def make_register(home: Path) -> Any:
    from runvoy_core.providers.local.register import LocalLockRegister

    return LocalLockRegister(home)


def counter(home: Path, work: Path, cycles: int, lease_s: float) -> int:
    manager = LockManager(make_register(home), lease=lease_s, poll_min=0.002, poll_max=0.03)
    counter_file = work / "counter"
    journal = work / "journal"
    done = 0
    while done < cycles:
        holder = LockHolder(execution_id=f"p{os.getpid()}-{done}", user="stress", host="local")
        lease = manager.acquire("counter", holder, mode=OnConflict.WAIT, timeout=120)
        try:
            value = int(counter_file.read_text() or "0")
            # a holder writes only inside its safe deadline and with the newest fence
            if time.monotonic() >= lease.safe_deadline() and not lease.renew():
                continue
            check_fence(manager.register, "counter", lease.fence)
            counter_file.write_text(str(value + 1))
            with journal.open("a") as f:
                f.write(f"{value + 1} {lease.fence} {os.getpid()}\n")
            done += 1
        except StaleFence:
            continue
        finally:
            lease.release()
    return 0


def hold(home: Path, work: Path, name: str, lease_s: float) -> int:
    manager = LockManager(make_register(home), lease=lease_s, poll_min=0.01, poll_max=0.05)
    lease = manager.acquire(
        name, LockHolder(execution_id=f"holder-{os.getpid()}"), mode=OnConflict.WAIT, timeout=30
    )
    (work / "holder.ready.tmp").write_text(str(lease.fence))
    (work / "holder.ready.tmp").replace(work / "holder.ready")  # whole or absent, never half-written
    writes = work / "holder.writes"
    renewals = 0
    next_renew = time.monotonic() + lease.renew_interval
    while True:
        try:
            check_fence(manager.register, name, lease.fence)
        except StaleFence as exc:
            (work / "holder.refused").write_text(exc.message)
            lease.release()
            return 3
        with writes.open("a") as f:
            f.write(f"{lease.fence}\n")
        if time.monotonic() >= next_renew:
            renewed = lease.renew()
            renewals += 1
            # replaced whole, so the test never reads a half-written count
            (work / "holder.renewed.tmp").write_text(f"{renewals} {renewed}")
            (work / "holder.renewed.tmp").replace(work / "holder.renewed")
            next_renew = time.monotonic() + lease.renew_interval
        time.sleep(0.02)


def main(argv: list[str]) -> int:
    mode, home, work = argv[0], Path(argv[1]), Path(argv[2])
    if mode == "counter":
        return counter(home, work, int(argv[3]), float(argv[4]))
    if mode == "hold":
        return hold(home, work, argv[3], float(argv[4]))
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
