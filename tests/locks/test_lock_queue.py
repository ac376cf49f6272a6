"""--on-conflict queue: tickets, first in line, skipping dead waiters on the waiter's own clock, a number
taken but never written, a stalled waiter requeued, lost answers, and the order across real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runvoy_core.errors import LockTimeout
from runvoy_core.lock_queue import ABANDONED, DONE, QueueTicket, queue_key, ticket_key
from runvoy_core.locks import LockManager
from runvoy_core.metrics import Metrics
from runvoy_core.models import LockHolder
from runvoy_core.testing.memory_register import FaultyRegister, MemoryLockRegister
from runvoy_core.testing.waiting import DEADLINE, wait_for

LEASE, GRACE = 30.0, 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def holder(eid: str) -> LockHolder:
    return LockHolder(execution_id=eid, provider="local", user="alice", host="box1", command="make")


def ticket(reg, clock: FakeClock, eid: str) -> QueueTicket:  # type: ignore[no-untyped-def]
    queued = QueueTicket(reg, "deploy", holder(eid), lease=LEASE, grace=GRACE, clock=clock)
    queued.take()
    return queued


def state(reg, number: int) -> str:  # type: ignore[no-untyped-def]
    found = reg.read(ticket_key("deploy", number))
    return str(found.value["state"]) if found else "missing"


def test_tickets_are_served_in_order_and_finished_ones_are_passed() -> None:
    reg, clock = MemoryLockRegister(), FakeClock()
    first, second, third = (ticket(reg, clock, f"e{i}") for i in range(3))
    assert [first.ticket, second.ticket, third.ticket] == [1, 2, 3]
    assert first.first_in_line()
    assert not second.first_in_line() and not third.first_in_line()
    first.finish(DONE)
    assert second.first_in_line() and not third.first_in_line()
    assert reg.read(queue_key("deploy")).value["head"] == 2
    second.finish(ABANDONED)
    assert third.first_in_line()
    assert [state(reg, n) for n in (1, 2, 3)] == [DONE, ABANDONED, "waiting"]


def test_a_waiter_that_stops_beating_is_skipped_after_a_lease_on_our_clock() -> None:
    reg, clock = MemoryLockRegister(), FakeClock()
    dead, alive = ticket(reg, clock, "dead"), ticket(reg, clock, "alive")
    assert not alive.first_in_line()
    clock.now += LEASE  # not yet: lease + grace
    assert not alive.first_in_line()
    clock.now += GRACE
    assert alive.first_in_line()
    assert state(reg, dead.ticket) == ABANDONED
    assert dead.keep_alive() is False  # the stalled waiter learns it lost its place...
    dead.take()
    assert dead.ticket == 3 and not dead.first_in_line()  # ...and queues again at the back


def test_a_beating_waiter_is_never_skipped() -> None:
    reg, clock = MemoryLockRegister(), FakeClock()
    slow, behind = ticket(reg, clock, "slow"), ticket(reg, clock, "behind")
    for _ in range(20):
        clock.now += LEASE / 3
        assert slow.keep_alive() is True
        assert not behind.first_in_line()
    assert state(reg, slow.ticket) == "waiting"


def test_a_number_taken_but_never_written_is_skipped_and_its_owner_takes_another() -> None:
    reg, clock = MemoryLockRegister(), FakeClock()
    slow = QueueTicket(reg, "deploy", holder("slow"), lease=LEASE, grace=GRACE, clock=clock)
    lost_number = slow._next_number()  # crashed (or stalled) before writing its ticket
    behind = ticket(reg, clock, "behind")
    assert behind.ticket == lost_number + 1
    assert not behind.first_in_line()
    clock.now += LEASE + GRACE
    assert behind.first_in_line() and state(reg, lost_number) == ABANDONED
    assert slow.take() == 3  # its number is gone: it gets a new one


def test_a_lost_answer_on_the_counter_is_settled_by_reading_it() -> None:
    reg, clock = FaultyRegister(MemoryLockRegister()), FakeClock()
    ticket(reg, clock, "e0")
    reg.fail_next("lost", op="replace_if_version")  # the counter moved for us, but we were not told
    second = ticket(reg, clock, "e1")
    assert second.ticket == 2 and reg.read(queue_key("deploy")).value["next"] == 3


def manager(reg, clock=None, **kw) -> LockManager:  # type: ignore[no-untyped-def]
    kw.setdefault("metrics", Metrics())
    if clock is not None:
        kw.update(clock=clock, sleep=lambda s: setattr(clock, "now", clock.now + s))
    return LockManager(reg, lease=LEASE, **kw)


def test_a_queued_run_that_gives_up_lets_the_next_one_go_at_once() -> None:
    reg, clock = MemoryLockRegister(), FakeClock()
    m = manager(reg, clock, holder_status=lambda h: "running")
    m.acquire("deploy", holder("holder"))
    with pytest.raises(LockTimeout, match=r"in its queue \(ticket 1\)"):
        m.acquire_queued("deploy", holder("impatient"), timeout=20)
    assert state(reg, 1) == ABANDONED
    behind = ticket(reg, clock, "next")
    assert behind.first_in_line()


def test_queue_records_are_not_locks() -> None:
    reg, clock = MemoryLockRegister(), FakeClock()
    m = manager(reg, clock)
    m.acquire("deploy", holder("holder"))
    ticket(reg, clock, "waiting")
    assert [record.name for record, _ in m.list()] == ["deploy"]


def test_threads_get_the_lock_in_the_order_they_queued() -> None:
    reg = MemoryLockRegister()
    m = LockManager(reg, lease=LEASE, metrics=Metrics(), holder_status=lambda h: "running")
    first = m.acquire("deploy", holder("holder"))
    order: list[int] = []

    def run(i: int) -> None:
        lease = m.acquire_queued("deploy", holder(f"e{i}"), timeout=60)
        order.append(i)
        lease.release()

    threads = []
    for i in range(5):
        t = threading.Thread(target=run, args=(i,))
        t.start()
        threads.append(t)
        # the next thread starts only once this one holds a ticket
        wait_for(
            lambda i=i: (
                (counter := reg.read(queue_key("deploy"))) is not None and counter.value["next"] == i + 2
            ),
            what=f"thread {i} to hold a ticket",
            interval=0.005,
        )
    first.release()
    for t in threads:
        t.join(DEADLINE)
    assert order == [0, 1, 2, 3, 4]


@pytest.mark.timeout(120)
def test_queued_cli_runs_start_in_the_order_they_came(runvoy_home: Path, tmp_path: Path) -> None:
    from runvoy_core.providers.local.register import LocalLockRegister

    order = tmp_path / "order"
    gate = tmp_path / "gate"
    env = dict(os.environ)

    def runvoy(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "runvoy_cli.main", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = runvoy("run", "--lock", "deploy", f"while [ ! -e {gate} ]; do sleep 0.05; done")
    register = LocalLockRegister(runvoy_home)
    wait_for(lambda: register.read("deploy"), what="the first run to hold the lock")
    waiting = []
    for i in range(4):
        waiting.append(runvoy("run", "--lock", "deploy", "--on-conflict", "queue", f"echo {i} >> {order}"))
        # the next run comes only once this one holds its ticket
        wait_for(
            lambda i=i: (
                (counter := register.read(queue_key("deploy"))) is not None and counter.value["next"] == i + 2
            ),
            what=f"run {i} to hold a ticket",
        )
    gate.touch()
    for run in [first, *waiting]:
        _out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    assert order.read_text().split() == ["0", "1", "2", "3"]


def release(lease) -> None:  # type: ignore[no-untyped-def]
    """Release, retrying while the register fails (a lost answer reads back as released)."""
    for _ in range(100):
        try:
            lease.release()
            return
        except Exception:
            time.sleep(0.005)


def test_queued_holders_never_overlap_while_the_register_fails_now_and_then() -> None:
    """Six queued threads against a register that drops or loses 1 write in 10 and fails 1 read in 20:
    every one gets the lock, one at a time, and each one's fence is newer than the last."""
    import random

    reg = FaultyRegister(
        MemoryLockRegister(), error_rate=0.1, lost_rate=0.1, read_error_rate=0.05, rng=random.Random(7)
    )
    m = LockManager(reg, lease=LEASE, metrics=Metrics(), poll_min=0.005, poll_max=0.02)
    inside = threading.Lock()
    fences: list[int] = []
    failures: list[BaseException] = []

    def run(i: int) -> None:
        try:
            lease = m.acquire_queued("deploy", holder(f"e{i}"), timeout=60)
            assert inside.acquire(blocking=False), "two holders at once"
            fences.append(lease.fence)
            time.sleep(0.01)
            inside.release()
            release(lease)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not failures, failures
    assert len(fences) == 6 and fences == sorted(fences) and len(set(fences)) == 6


def test_a_ticket_whose_run_holds_the_lock_is_passed_even_if_it_was_not_marked_done() -> None:
    reg, clock = MemoryLockRegister(), FakeClock()
    served = ticket(reg, clock, "e0")
    behind = ticket(reg, clock, "e1")
    assert not behind.first_in_line()
    lease = manager(reg, clock).acquire("deploy", holder("e0"))  # e0 got the lock but never said so
    assert behind.first_in_line()
    lease.release()  # still its turn that has passed: the lock names e0 as its last holder
    assert behind.first_in_line()
    assert served.ticket == 1


def test_a_lost_answer_under_contention_still_finds_its_number() -> None:
    reg, clock = FaultyRegister(MemoryLockRegister()), FakeClock()
    ticket(reg, clock, "e0")
    slow = QueueTicket(reg, "deploy", holder("slow"), lease=LEASE, grace=GRACE, clock=clock)
    real_read = reg.read
    counter_reads: list[int] = []

    def read_after_others_moved_on(key: str):  # type: ignore[no-untyped-def]
        if key == queue_key("deploy"):
            counter_reads.append(1)
            if len(counter_reads) == 2:  # our read after the lost write: someone took a number first
                reg.read = real_read  # type: ignore[method-assign]
                ticket(reg, clock, "e2")
        return real_read(key)

    reg.fail_next("lost", op="replace_if_version")
    reg.read = read_after_others_moved_on  # type: ignore[method-assign]
    assert slow.take() == 2
    reg.read = real_read  # type: ignore[method-assign]
    assert reg.read(ticket_key("deploy", 3)).value["holder"]["execution_id"] == "e2"
