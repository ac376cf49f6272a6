"""The lease protocol against the in-memory register, driven by a fake clock (deterministic)."""

from __future__ import annotations

import pytest

from runvoy_core.errors import LockHeld, LockTimeout, StaleFence, TransientProviderError
from runvoy_core.locks import LockManager, check_fence
from runvoy_core.metrics import Metrics
from runvoy_core.models import LockHolder, LockState, OnConflict
from runvoy_core.testing.memory_register import FaultyRegister, MemoryLockRegister


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def holder(eid: str) -> LockHolder:
    return LockHolder(execution_id=eid, provider="local", user="alice", host="box1", command="make deploy")


def manager(register, clock: FakeClock | None = None, **kw) -> LockManager:
    clock = clock or FakeClock()
    kw.setdefault("metrics", Metrics())
    return LockManager(register, lease=30.0, clock=clock, sleep=clock.sleep, **kw)


def test_first_acquire_creates_fence_1_and_release_keeps_the_fence() -> None:
    reg = MemoryLockRegister()
    m = manager(reg)
    lease = m.acquire("deploy", holder("e1"))
    assert lease.fence == 1
    rec, _ = m.get("deploy")
    assert rec.state == LockState.HELD and rec.owner_id == lease.owner_id
    assert lease.release() is True
    rec, _ = m.get("deploy")
    assert rec.state == LockState.RELEASED and rec.fence == 1 and rec.owner_id is None
    assert rec.audit[-1]["event"] == "released"
    again = m.acquire("deploy", holder("e2"))
    assert again.fence == 2


def test_fail_mode_names_holder_execution_user_host_fence_and_command() -> None:
    reg = MemoryLockRegister()
    m = manager(reg)
    m.acquire("deploy", holder("abc123def456"))
    with pytest.raises(LockHeld) as err:
        m.acquire("deploy", holder("e2"))
    msg = err.value.message
    assert err.value.exit_code == 75
    assert "\n" not in msg
    for part in (
        "'deploy'",
        "abc123def456",
        "alice",
        "box1",
        "local",
        "since",
        "fence 1",
        "runvoy locks status deploy",
    ):
        assert part in msg, part


def test_renew_by_owner_changes_version_and_keeps_fence() -> None:
    reg = MemoryLockRegister()
    m = manager(reg)
    lease = m.acquire("x", holder("e1"))
    v0 = lease.version
    assert lease.renew() is True
    assert lease.version != v0 and lease.fence == 1
    assert m.get("x")[1] == lease.version
    assert m.get("x")[0].renewals == 1


def test_waiter_cannot_steal_while_holder_renews() -> None:
    reg = MemoryLockRegister()
    hc, wc = FakeClock(), FakeClock(5_000.0)
    holder_m, waiter_m = manager(reg, hc), manager(reg, wc)
    lease = holder_m.acquire("x", holder("e1"))
    attempt = waiter_m.begin("x", holder("e2"), mode=OnConflict.WAIT, timeout=10_000)
    for _ in range(100):  # 100 × 5 s = 500 s, far beyond the 30 s lease
        assert attempt.poll() is None
        hc.now += 5
        wc.now += 5
        if hc.now >= lease.safe_deadline() - 10:
            assert lease.renew()
    assert not lease.lost


def test_steal_after_lease_plus_grace_on_waiter_clock_bumps_fence() -> None:
    reg = MemoryLockRegister()
    metrics = Metrics()
    hc, wc = FakeClock(), FakeClock(-77.0)  # clocks of different machines share nothing
    holder_m = manager(reg, hc, metrics=metrics)
    waiter_m = manager(reg, wc, metrics=metrics)
    old = holder_m.acquire("x", holder("e1"))
    attempt = waiter_m.begin("x", holder("e2"), mode=OnConflict.WAIT, timeout=1000)
    assert attempt.poll() is None
    wc.now += 30 + waiter_m.grace - 0.5
    assert attempt.poll() is None  # not yet a whole lease + grace
    wc.now += 1.0
    new = attempt.poll()
    assert new is not None and new.fence == old.fence + 1
    assert old.renew() is False and old.lost
    assert old.release() is False
    with pytest.raises(StaleFence):
        check_fence(reg, "x", old.fence)
    check_fence(reg, "x", new.fence)
    rec = waiter_m.get("x")[0]
    assert rec.audit[-1]["event"] == "stolen" and rec.audit[-1]["stolen_from"] == "e1"
    assert "runvoy_lock_steals_total" in metrics.to_prometheus()


def test_a_running_holder_is_never_stolen_and_an_ended_one_is_taken_at_once() -> None:
    reg = MemoryLockRegister()
    status = {"e1": "running"}
    wc = FakeClock()
    holder_m = manager(reg)
    waiter_m = manager(reg, wc, holder_status=lambda h: status[h.execution_id])
    holder_m.acquire("x", holder("e1"))  # a detached run: nobody renews this lease
    attempt = waiter_m.begin("x", holder("e2"), mode=OnConflict.WAIT, timeout=10_000)
    for _ in range(50):
        assert attempt.poll() is None
        wc.now += 10
    status["e1"] = "ended"
    wc.now += waiter_m.status_interval
    lease = attempt.poll()
    assert lease is not None and lease.fence == 2


def test_fail_mode_takes_a_lock_whose_holder_ended() -> None:
    reg = MemoryLockRegister()
    manager(reg).acquire("x", holder("e1"))
    m = manager(reg, holder_status=lambda h: "ended")
    assert m.acquire("x", holder("e2")).fence == 2


def test_release_if_holder_ended() -> None:
    reg = MemoryLockRegister()
    status = {"e1": "running"}
    m = manager(reg, holder_status=lambda h: status[h.execution_id])
    lease = m.acquire("x", holder("e1"))
    assert m.release_if_holder_ended("x") is False
    status["e1"] = "ended"
    assert m.release_if_holder_ended("x") is True
    rec = m.get("x")[0]
    assert rec.state == LockState.RELEASED and rec.audit[-1]["by"] == "observer"
    assert lease.renew() is False
    assert manager(reg).release_if_holder_ended("x") is False  # no holder_status: never


def test_cancel_mode_stops_each_holder_once_then_takes_the_lock_when_it_ends() -> None:
    reg = MemoryLockRegister()
    status = {"e1": "running"}
    clock = FakeClock()
    manager(reg).acquire("x", holder("e1"))  # detached: nobody renews, nobody releases
    asked: list[str] = []
    answers = [False, True]  # a holder still starting has no task to stop yet: the first ask fails

    def stop_holder(held: LockHolder) -> bool:
        asked.append(held.execution_id or "")
        return answers.pop(0) if answers else True

    m = manager(reg, clock, holder_status=lambda h: status[h.execution_id])
    attempt = m.begin("x", holder("e2"), mode=OnConflict.CANCEL, timeout=10_000, stop_holder=stop_holder)
    assert attempt.poll() is None and asked == ["e1"]
    assert attempt.poll() is None and asked == ["e1"], "asked again before the status interval"
    clock.now += m.status_interval
    assert attempt.poll() is None and asked == ["e1", "e1"]
    for _ in range(5):
        clock.now += m.status_interval
        assert attempt.poll() is None
    assert asked == ["e1", "e1"], "a holder that took the stop is not asked again"
    status["e1"] = "ended"
    clock.now += m.status_interval
    lease = attempt.poll()
    assert lease is not None and lease.fence == 2
    assert m.metrics.cancels.value(lock="x") == 1


def test_only_cancel_mode_stops_the_holder() -> None:
    reg = MemoryLockRegister()
    manager(reg).acquire("x", holder("e1"))
    asked: list[LockHolder] = []
    clock = FakeClock()
    m = manager(reg, clock, holder_status=lambda h: "running")
    with pytest.raises(LockHeld):
        m.acquire("x", holder("e2"), stop_holder=lambda h: bool(asked.append(h)) or True)
    with pytest.raises(LockTimeout):
        m.acquire(
            "x", holder("e2"), mode=OnConflict.WAIT, timeout=5, stop_holder=lambda h: bool(asked.append(h))
        )
    assert asked == []


def test_cancel_mode_gives_up_at_the_lock_timeout_when_the_holder_does_not_end() -> None:
    reg = MemoryLockRegister()
    manager(reg).acquire("x", holder("e1"))
    clock = FakeClock()
    m = manager(reg, clock, holder_status=lambda h: "running")
    with pytest.raises(LockTimeout, match="gave up waiting for lock 'x'"):
        m.acquire("x", holder("e2"), mode=OnConflict.CANCEL, timeout=30, stop_holder=lambda h: True)


def test_wait_mode_times_out_with_lock_timeout_and_reports_progress() -> None:
    reg = MemoryLockRegister()
    status = {"e1": "running"}
    clock = FakeClock()
    manager(reg).acquire("x", holder("e1"))
    m = manager(reg, clock, holder_status=lambda h: status[h.execution_id])
    seen: list[float] = []
    with pytest.raises(LockTimeout) as err:
        m.acquire("x", holder("e2"), mode=OnConflict.WAIT, timeout=60, on_wait=lambda rec, w: seen.append(w))
    assert err.value.exit_code == 75
    assert "gave up waiting for lock 'x'" in err.value.message and "e1" in err.value.message
    assert seen and seen == sorted(seen) and seen[-1] <= 60
    assert 60 <= clock.now - 1000 < 61


def test_wait_mode_gets_the_lock_when_released() -> None:
    reg = MemoryLockRegister()
    clock = FakeClock()
    first = manager(reg).acquire("x", holder("e1"))
    m = manager(reg, clock)
    calls = []

    def on_wait(rec, waited):
        calls.append(waited)
        if len(calls) == 3:
            first.release()

    lease = m.acquire("x", holder("e2"), mode=OnConflict.WAIT, timeout=60, on_wait=on_wait)
    assert lease.fence == 2 and len(calls) == 3


def test_non_owner_cannot_renew_or_release() -> None:
    reg = MemoryLockRegister()
    m = manager(reg)
    lease = m.acquire("x", holder("e1"))
    assert m.force_release("x", lease.version, by="op")
    current = m.acquire("x", holder("e2"))
    before = reg.read("x")
    assert lease.renew() is False
    assert lease.release() is False
    assert reg.read("x") == before
    done = m.acquire("y", holder("e3"))
    assert done.release() is True
    other = m.acquire("y", holder("e4"))
    before = reg.read("y")
    assert done.renew() is False
    assert done.release() is True  # idempotent for its own earlier release, and changes nothing
    assert reg.read("y") == before
    assert current.renew() is True and other.renew() is True


def test_force_release_is_a_cas_on_the_version_seen() -> None:
    reg = MemoryLockRegister()
    m = manager(reg)
    lease = m.acquire("x", holder("e1"))
    _, seen = m.get("x")
    lease.renew()  # the record moved on since the operator looked
    assert m.force_release("x", seen, by="bob") is False
    _, seen = m.get("x")
    assert m.force_release("x", seen, by="bob") is True
    rec, _ = m.get("x")
    assert rec.state == LockState.RELEASED and rec.audit[-1]["event"] == "force_released"
    assert rec.audit[-1]["by"] == "bob" and rec.audit[-1]["execution_id"] == "e1"
    assert lease.renew() is False and lease.lost
    assert m.force_release("x", m.get("x")[1], by="bob") is False  # nothing held


def test_lost_response_on_grant_is_resolved_by_rereading() -> None:
    reg = FaultyRegister(MemoryLockRegister())
    m = manager(reg)
    reg.fail_next("lost", op="create_if_absent")
    lease = m.acquire("x", holder("e1"))
    assert lease.fence == 1
    lease.release()
    reg.fail_next("lost", op="replace_if_version")
    lease = m.acquire("x", holder("e1"))
    assert lease.fence == 2


def test_lost_response_on_renew_and_release() -> None:
    reg = FaultyRegister(MemoryLockRegister())
    m = manager(reg)
    lease = m.acquire("x", holder("e1"))
    reg.fail_next("lost", op="replace_if_version")
    assert lease.renew() is True
    assert m.get("x")[0].renewals == 1
    reg.fail_next("lost", op="replace_if_version")
    assert lease.release() is True
    assert m.get("x")[0].state == LockState.RELEASED


def test_renew_error_raises_and_next_renew_recovers_without_moving_deadline_early() -> None:
    reg = FaultyRegister(MemoryLockRegister())
    clock = FakeClock()
    m = manager(reg, clock)
    lease = m.acquire("x", holder("e1"))
    first_deadline = lease.safe_deadline()
    assert first_deadline == pytest.approx(1000 + 30 - 10 - m.margin)
    clock.now += 5
    reg.fail_next("error", op="replace_if_version")
    assert lease.renew() is True  # a failed write that is still ours is retried at once
    first_deadline = lease.safe_deadline()
    assert first_deadline == pytest.approx(1005 + 20 - m.margin)
    clock.now += 5
    reg.fail_next("error", op="replace_if_version")
    reg.fail_next("error", op="read")
    with pytest.raises(TransientProviderError):
        lease.renew()
    assert lease.safe_deadline() == first_deadline
    clock.now += 5
    # the write lands but its answer is lost, and the re-read fails too
    reg.fail_next("lost", op="replace_if_version")
    reg.fail_next("error", op="read")
    with pytest.raises(TransientProviderError):
        lease.renew()
    assert lease.safe_deadline() == first_deadline  # not known to have landed: no credit yet
    clock.now += 5
    # the store keeps failing writes, but the re-read shows the lost write of t=1015 did land
    reg.fail_next("error", op="replace_if_version", times=3)
    with pytest.raises(TransientProviderError):
        lease.renew()
    assert lease.safe_deadline() == pytest.approx(1015 + 20 - m.margin)
    clock.now += 1
    assert lease.renew() is True
    assert lease.safe_deadline() == pytest.approx(1021 + 20 - m.margin)


def test_store_outage_during_wait_then_recovery() -> None:
    reg = FaultyRegister(MemoryLockRegister())
    clock = FakeClock()
    first = manager(reg).acquire("x", holder("e1"))
    m = manager(reg, clock)
    n = []

    def on_wait(rec, waited):
        n.append(waited)
        if len(n) == 2:
            reg.down = True
        if clock.now > 1005:
            reg.down = False
            first.release()

    lease = m.acquire("x", holder("e2"), mode=OnConflict.WAIT, timeout=60, on_wait=on_wait)
    assert lease.fence == 2


def test_list_and_get() -> None:
    reg = MemoryLockRegister()
    m = manager(reg)
    m.acquire("b", holder("e1"))
    m.acquire("a", holder("e2")).release()
    assert [r.name for r, _ in m.list()] == ["a", "b"]
    assert m.get("nope") is None


def test_metrics_record_acquire_conflict_wait_renew_failure_lost_hold() -> None:
    reg = MemoryLockRegister()
    metrics = Metrics()
    clock = FakeClock()
    m = manager(reg, clock, metrics=metrics)
    lease = m.acquire("x", holder("e1"))
    with pytest.raises(LockHeld):
        m.acquire("x", holder("e2"))
    clock.now += 3
    lease.release()
    text = metrics.to_prometheus()
    assert 'runvoy_lock_conflicts_total{lock="x",mode="fail"} 1' in text
    assert 'runvoy_lock_acquired_total{how="created",lock="x"} 1' in text or (
        'runvoy_lock_acquired_total{lock="x",how="created"} 1' in text
    )
    assert 'runvoy_lock_hold_seconds_sum{lock="x"} 3' in text
    assert 'runvoy_lock_acquire_seconds_count{lock="x"} 1' in text


# -- slots: a lock that up to N runs hold at once ----------------------------------------------------------
def test_slots_are_taken_in_order_and_the_next_run_fails_naming_every_holder() -> None:
    reg = MemoryLockRegister()
    m = manager(reg, holder_status=lambda h: "running")
    leases = [m.acquire_slot("etl", 3, holder(f"e{i}")) for i in range(3)]
    assert [lease.name for lease in leases] == ["etl#1", "etl#2", "etl#3"]
    assert all(lease.fence == 1 for lease in leases)
    with pytest.raises(LockHeld) as err:
        m.acquire_slot("etl", 3, holder("e9"))
    assert "all 3 slots of lock 'etl' are held" in err.value.message
    assert all(f"etl#{k}: execution e{k - 1}" in err.value.message for k in (1, 2, 3))
    assert err.value.exit_code == 75


def test_a_waiting_run_gets_the_slot_that_frees_up() -> None:
    reg = MemoryLockRegister()
    clock = FakeClock()
    status = {"e0": "running", "e1": "running"}
    m = manager(reg, clock, holder_status=lambda h: status.get(h.execution_id or "", "running"))
    m.acquire_slot("etl", 2, holder("e0"))
    second = m.acquire_slot("etl", 2, holder("e1"))
    attempt_waits: list[float] = []

    def free_the_second(record: object, waited: float) -> None:
        attempt_waits.append(waited)
        if len(attempt_waits) == 3:
            second.release()

    third = m.acquire_slot("etl", 2, holder("e2"), mode=OnConflict.WAIT, timeout=600, on_wait=free_the_second)
    assert third.name == "etl#2" and third.fence == 2
    status["e0"] = "ended"  # an ended holder's slot is taken at once, even in mode fail
    assert m.acquire_slot("etl", 2, holder("e3")).name == "etl#1"


def test_a_slot_wait_gives_up_at_the_lock_timeout() -> None:
    reg = MemoryLockRegister()
    clock = FakeClock()
    m = manager(reg, clock, holder_status=lambda h: "running")
    m.acquire_slot("etl", 2, holder("e0"))
    m.acquire_slot("etl", 2, holder("e1"))
    with pytest.raises(LockTimeout, match="gave up waiting for a slot of lock 'etl'"):
        m.acquire_slot("etl", 2, holder("e2"), mode=OnConflict.WAIT, timeout=30)
    assert 30 <= clock.now - 1000 < 31


def test_a_lost_grant_answer_is_settled_before_another_slot_is_taken() -> None:
    reg = FaultyRegister(MemoryLockRegister())
    m = manager(reg)
    reg.fail_next("lost", op="create_if_absent")  # slot 1 is ours, but the answer is lost...
    reg.fail_next("error", op="read")  # ...and so is the read that would have told us
    lease = m.acquire_slot("etl", 2, holder("e1"), mode=OnConflict.WAIT, timeout=60)
    assert lease.name == "etl#1"
    assert m.get("etl#2") is None, "a second slot was taken while the first grant was unsettled"


class LateRegister(MemoryLockRegister):
    """The first grant of slot 1 times out without applying, then lands while slot 2 is being read."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: tuple[str, dict[str, object]] | None = None

    def create_if_absent(self, key: str, value: dict[str, object]) -> bool:  # type: ignore[override]
        if key == "etl#1" and self.pending is None:
            self.pending = (key, value)
            raise TimeoutError("the answer never came")
        return super().create_if_absent(key, value)  # type: ignore[arg-type]

    def read(self, key: str):  # type: ignore[no-untyped-def]
        if key == "etl#2" and self.pending is not None and self.pending[0] == "etl#1":
            super().create_if_absent(*self.pending)  # type: ignore[arg-type]
            self.pending = ("done", {})
        return super().read(key)


def test_a_slot_grant_that_lands_late_is_given_back() -> None:
    reg = LateRegister()
    m = manager(reg)
    lease = m.acquire_slot("etl", 2, holder("e1"), mode=OnConflict.WAIT, timeout=60)
    assert lease.name == "etl#2"
    late = m.get("etl#1")
    assert late is not None and late[0].state == LockState.RELEASED
    assert late[0].audit[-1]["reason"] == "unused slot"


def test_slot_rules() -> None:
    reg = MemoryLockRegister()
    m = manager(reg)
    assert m.acquire_slot("one", 1, holder("e1")).name == "one"  # one slot is the plain lock
    from runvoy_core.errors import UsageError

    with pytest.raises(UsageError, match="cannot be used with lock slots"):
        m.acquire_slot("etl", 2, holder("e1"), mode=OnConflict.CANCEL)
