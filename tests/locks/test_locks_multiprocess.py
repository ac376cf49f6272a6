"""The lock protocol across real processes on the local provider's SQLite register."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runvoy_core.errors import StaleFence
from runvoy_core.locks import LockManager, check_fence
from runvoy_core.models import LockHolder, LockState, OnConflict
from runvoy_core.providers.local.register import LocalLockRegister
from runvoy_core.testing.waiting import DEADLINE, wait_for, wait_for_file

WORKER = Path(__file__).with_name("locks_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def make_register(home: Path) -> LocalLockRegister:
    return LocalLockRegister(home)


def spawn(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(WORKER), *args], env=env, stderr=subprocess.PIPE)


def renewals(work: Path) -> int:
    """How many times the holder has renewed (it replaces the file atomically)."""
    try:
        return int((work / "holder.renewed").read_text().split()[0])
    except FileNotFoundError:
        return 0


@pytest.mark.timeout(240)
def test_16_processes_increment_a_shared_counter_800_times(runvoy_home: Path, tmp_path: Path) -> None:
    procs, cycles = 16, 50
    work = tmp_path / "work"
    work.mkdir()
    (work / "counter").write_text("0")
    started = time.monotonic()
    workers = [spawn("counter", str(runvoy_home), str(work), str(cycles), "2.0") for _ in range(procs)]
    for w in workers:
        _, err = w.communicate(timeout=200)
        assert w.returncode == 0, err.decode()[-2000:]
    elapsed = time.monotonic() - started
    assert (work / "counter").read_text() == str(procs * cycles)
    entries = [line.split() for line in (work / "journal").read_text().splitlines()]
    assert [int(e[0]) for e in entries] == list(range(1, procs * cycles + 1))
    fences = [int(e[1]) for e in entries]
    assert all(a < b for a, b in itertools.pairwise(fences)), "fences must strictly increase"
    manager = LockManager(make_register(runvoy_home))
    record, _ = manager.get("counter")
    assert record.state == LockState.RELEASED, "no lock left held afterwards"
    assert record.fence >= procs * cycles
    assert elapsed < 200, f"stress took {elapsed:.1f}s"  # a sanity bound with room for a loaded machine


@pytest.mark.timeout(120)
def test_sigstopped_holder_loses_the_lock_and_its_writes_are_refused(
    runvoy_home: Path, tmp_path: Path
) -> None:
    # the holder renews every lease/3: a 3 s lease lets it through a loaded machine's stalls
    lease_s = 3.0
    work = tmp_path / "work"
    work.mkdir()
    holder = spawn("hold", str(runvoy_home), str(work), "deploy", str(lease_s))
    try:
        first_fence = int(wait_for_file(work / "holder.ready"))
        wait_for(lambda: renewals(work), what="the holder to renew")
        manager = LockManager(make_register(runvoy_home), lease=lease_s)
        register = manager.register
        # while it renews, nobody can take it: watched over two more renewals
        attempt = manager.begin("deploy", LockHolder(execution_id="waiter"), mode=OnConflict.WAIT, timeout=60)
        seen = renewals(work)

        def renewed_twice_while_the_waiter_waits() -> bool:
            assert attempt.poll() is None, "the lock was taken from a holder that renews it"
            return renewals(work) >= seen + 2

        wait_for(renewed_twice_while_the_waiter_waits, what="two more renewals")
        os.kill(holder.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        lease = manager.acquire("deploy", LockHolder(execution_id="waiter"), mode=OnConflict.WAIT, timeout=60)
        took = time.monotonic() - stopped_at
        assert lease.fence == first_fence + 1
        # never before a whole lease; the upper bound leaves room for a loaded machine
        assert lease_s <= took <= lease_s + manager.grace + 10
        writes_before = (work / "holder.writes").read_text().splitlines()
        os.kill(holder.pid, signal.SIGCONT)
        assert holder.wait(timeout=DEADLINE) == 3, holder.stderr.read().decode() if holder.stderr else ""
        refused = (work / "holder.refused").read_text()
        assert f"fence {first_fence + 1}" in refused and f"(fence {first_fence})" in refused
        writes_after = (work / "holder.writes").read_text().splitlines()
        # at most one write can slip through if the stop landed between its check and its write
        assert len(writes_after) - len(writes_before) <= 1
        with pytest.raises(StaleFence):
            check_fence(register, "deploy", first_fence)
        assert lease.renew() and lease.release()
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
            holder.wait()
