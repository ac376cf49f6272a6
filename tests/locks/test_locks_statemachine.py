"""Hypothesis stateful test of the lease protocol: three clients with their own clocks (different offsets
and rates) share one in-memory register; the test pauses them, crashes them, restarts them, loses responses
and fails writes, and checks the invariants from the reference after every step.

Invariants: at most one client believes it holds the lock (lease not lost and its own clock before its safe
deadline) · fences of grants strictly increase and the stored fence never goes down · a holder that renews
on schedule is never stolen from · a stale lease cannot renew or release (the record does not change) · after
a holder crashes, a polling client gets the lock within lease + grace + poll on its own clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from runvoy_core.errors import TransientProviderError
from runvoy_core.locks import Acquisition, HolderStatus, Lease, LockManager
from runvoy_core.metrics import Metrics
from runvoy_core.models import LockHolder, LockRecord, LockState, OnConflict
from runvoy_core.testing.memory_register import FaultyRegister, MemoryLockRegister

LEASE = 9.0
NAME = "deploy"
STEP = 0.25


@dataclass
class Client:
    index: int
    offset: float
    rate: float
    world: LockMachine
    manager: LockManager = field(init=False)
    lease: Lease | None = None
    attempt: Acquisition | None = None
    paused: bool = False
    crashed: bool = False
    diligent: bool = False  # renewed on schedule with no fault since the grant
    next_renew: float = 0.0
    renew_failing: bool = False

    def __post_init__(self) -> None:
        self.restart()

    def clock(self) -> float:
        return self.offset + self.rate * self.world.now

    def restart(self) -> None:
        self.manager = LockManager(
            self.world.register,
            lease=LEASE,
            clock=self.clock,
            sleep=lambda s: None,
            metrics=Metrics(),
            holder_status=self.world.holder_status if self.world.use_status else None,
        )
        self.lease = None
        self.attempt = None
        self.crashed = False
        self.paused = False

    def valid(self) -> bool:
        lease = self.lease
        return (
            lease is not None
            and not self.crashed
            and not lease.lost
            and not lease.released
            and self.clock() < lease.safe_deadline()
        )


class LockMachine(RuleBasedStateMachine):
    use_status = False  # whether clients can ask if a holder's execution still runs (holder_status)

    def __init__(self) -> None:
        super().__init__()
        self.exec_status: dict[str, HolderStatus] = {}
        self.seq = 0
        self.inner = MemoryLockRegister()
        self.register = FaultyRegister(self.inner)
        self.now = 0.0
        self.clients: list[Client] = []
        self.max_fence = 0
        self.stored_fence = 0
        self.stale: list[Lease] = []

    @initialize(
        clocks=st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(0.95, 1.05)), min_size=3, max_size=3)
    )
    def setup(self, clocks: list[tuple[float, float]]) -> None:
        self.clients = [Client(i, off, rate, self) for i, (off, rate) in enumerate(clocks)]
        for c in self.clients:
            self.poll_once(c)

    # -- helpers ----------------------------------------------------------------------------------------
    def holder_status(self, holder: LockHolder) -> HolderStatus:
        return self.exec_status.get(holder.execution_id or "", "unknown")

    def new_holder(self, c: Client) -> LockHolder:
        self.seq += 1
        return LockHolder(execution_id=f"c{c.index}-{self.seq}")

    def status_of(self, lease: Lease) -> HolderStatus:
        return self.holder_status(lease.holder)

    def stored(self) -> LockRecord | None:
        current = self.inner.read(NAME)
        return LockRecord.model_validate(current.value) if current else None

    def faults(self) -> int:
        return len(self.register.injected)

    def owner_client(self) -> Client | None:
        record = self.stored()
        if record is None or record.state != LockState.HELD:
            return None
        for c in self.clients:
            if c.lease is not None and c.lease.owner_id == record.owner_id:
                return c
        return None

    def granted(self, client: Client, lease: Lease) -> None:
        assert lease.fence > self.max_fence, (lease.fence, self.max_fence)
        self.max_fence = lease.fence
        for other in self.clients:
            if other is not client:
                assert not other.valid(), f"client {other.index} still holds a valid lease"
                assert not (
                    other.lease is not None
                    and other.diligent
                    and not other.paused
                    and not other.crashed
                    and not other.lease.lost
                    and not other.lease.released
                ), f"stole from client {other.index}, which renewed on schedule"
                if self.use_status and other.lease is not None and not other.lease.released:
                    assert self.status_of(other.lease) != "running", (
                        f"took the lock of client {other.index}, whose execution still runs"
                    )
        self.exec_status[lease.holder.execution_id or ""] = "running"
        event(f"grant fence>={min(lease.fence, 4)}")
        client.lease = lease
        client.attempt = None
        client.diligent = True
        client.renew_failing = False
        client.next_renew = client.clock() + lease.renew_interval

    def drop(self, client: Client, *, end: bool = True) -> None:
        """The client stops using its lease; its execution ends (unless it crashed and left it running)."""
        if client.lease is not None:
            self.stale.append(client.lease)
            if end:
                self.exec_status[client.lease.holder.execution_id or ""] = "ended"
        client.lease = None

    def run_holders(self) -> None:
        """What a runner's watch loop does for each live holder: renew on schedule, stop past the deadline."""
        for c in self.clients:
            lease = c.lease
            if lease is None or c.paused or c.crashed or c.clock() < c.next_renew:
                continue
            before = self.faults()
            try:
                ok: bool | None = lease.renew()
            except TransientProviderError:
                ok = None
            if self.faults() != before:
                c.diligent = False
            if ok:
                c.next_renew = c.clock() + lease.renew_interval
                continue
            if ok is False:
                assert not c.diligent, f"client {c.index} renewed on schedule yet lost its lock"
                self.drop(c)
            elif c.clock() >= lease.safe_deadline():
                self.drop(c)  # the runner stops its task: lock lost
            else:
                c.diligent = False
                c.next_renew = c.clock() + min(1.0, lease.renew_interval)

    # -- rules ------------------------------------------------------------------------------------------
    @rule(dt=st.floats(0.05, 6.0))
    def advance(self, dt: float) -> None:
        """Time passes: live holders renew on schedule, live waiters keep polling."""
        end = self.now + dt
        while self.now < end:
            self.now = min(end, self.now + STEP)
            self.run_holders()
            for c in self.clients:
                self.poll_once(c)

    def poll_once(self, c: Client) -> None:
        """Every live client wants the lock whenever it does not hold it (workers in a loop)."""
        if c.paused or c.crashed or c.lease is not None:
            return
        if c.attempt is None:
            holder = self.new_holder(c)
            c.attempt = c.manager.begin(NAME, holder, mode=OnConflict.WAIT, timeout=1e9)
        try:
            lease = c.attempt.poll()
        except TransientProviderError:
            return
        if lease is not None:
            self.granted(c, lease)

    @rule(i=st.integers(0, 2))
    def release(self, i: int) -> None:
        c = self.clients[i]
        if c.lease is None or c.paused or c.crashed:
            return
        try:
            c.lease.release()
        except TransientProviderError:
            pass  # outcome unknown; either way the holder has finished its work and stops using the lease
        self.drop(c)

    @rule(i=st.integers(0, 2))
    def pause(self, i: int) -> None:
        c = self.clients[i]
        c.paused = True
        c.diligent = False

    @rule(i=st.integers(0, 2))
    def resume(self, i: int) -> None:
        self.clients[i].paused = False

    @rule(i=st.integers(0, 2), task_survives=st.booleans())
    def crash(self, i: int, task_survives: bool) -> None:
        """The watcher dies; its task may go on running (then its lock must not be taken) or end."""
        c = self.clients[i]
        if c.lease is not None and not task_survives:
            self.exec_status[c.lease.holder.execution_id or ""] = "ended"
        c.crashed = True
        c.diligent = False
        c.attempt = None

    @rule(i=st.integers(0, 2))
    def restart(self, i: int) -> None:
        c = self.clients[i]
        if c.crashed:
            self.drop(c, end=False)
            c.restart()

    @rule(
        kind=st.sampled_from(["error", "lost"]),
        op=st.sampled_from(["create_if_absent", "replace_if_version", "read", None]),
    )
    def inject_fault(self, kind: str, op: str | None) -> None:
        self.register.fail_next(kind, op)  # type: ignore[arg-type]

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data())
    def stale_lease_changes_nothing(self, data: st.DataObject) -> None:
        lease = data.draw(st.sampled_from(self.stale))
        record = self.stored()
        if record is None or (record.owner_id == lease.owner_id and record.state == LockState.HELD):
            return  # a crashed holder's lease is still the owner: not stale
        before = self.inner.read(NAME)
        released_by_itself = lease.released
        for op in (lease.renew, lease.release):
            try:
                result = op()
            except TransientProviderError:
                continue
            if op == lease.release and released_by_itself:
                assert result is True  # idempotent for its own release
            else:
                assert result is False, f"a stale lease's {op.__name__} succeeded"
        assert self.inner.read(NAME) == before

    @precondition(lambda self: any(c.crashed for c in self.clients))
    @rule(i=st.integers(0, 2))
    def liveness_after_crash(self, i: int) -> None:
        record = self.stored()
        crashed_owner = (
            record is not None
            and record.state == LockState.HELD
            and any(
                c.crashed and c.lease is not None and c.lease.owner_id == record.owner_id
                for c in self.clients
            )
        )
        c = self.clients[i]
        if not crashed_owner or c.crashed or c.lease is not None:
            return
        if any(o.lease is not None and not o.crashed for o in self.clients):
            return
        if self.use_status and record is not None and self.holder_status(record.holder) == "running":
            return  # a detached/orphaned task still runs: the lock rightly stays with it
        self.register._queue.clear()
        c.paused = False
        c.attempt = c.manager.begin(NAME, self.new_holder(c), mode=OnConflict.WAIT, timeout=1e9)
        started = c.clock()
        bound = LEASE + c.manager.grace + 2 * STEP * 1.1
        if self.use_status and record is not None and self.holder_status(record.holder) == "ended":
            bound = 2 * STEP * 1.1  # an ended holder's lock is taken at once, without waiting for the lease
        while c.lease is None:
            assert c.clock() - started <= bound, "lock not re-acquired after its holder crashed"
            lease = c.attempt.poll()
            if lease is not None:
                self.granted(c, lease)
                break
            self.now += STEP
            self.run_holders()

    # -- invariants -------------------------------------------------------------------------------------
    @invariant()
    def one_valid_holder(self) -> None:
        valid = [c.index for c in self.clients if c.valid()]
        assert len(valid) <= 1, f"clients {valid} both hold the lock"

    @invariant()
    def fence_never_goes_down(self) -> None:
        record = self.stored()
        fence = record.fence if record else 0
        assert fence >= self.stored_fence
        self.stored_fence = fence
        assert fence >= self.max_fence


class LockMachineWithHolderStatus(LockMachine):
    """The same, with clients that can ask whether the holder's execution still runs (as the runner does):
    a running holder's lock is never taken, an ended one's is taken at once."""

    use_status = True


SETTINGS = settings(
    max_examples=250,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LockMachine.TestCase.settings = SETTINGS
LockMachineWithHolderStatus.TestCase.settings = SETTINGS
TestLockProtocolStateMachine = LockMachine.TestCase
TestLockProtocolWithHolderStatus = LockMachineWithHolderStatus.TestCase
