"""Named locks: the lease protocol, written once over any provider's compare-and-swap register.

Rules this module keeps (see docs/locks.md):

* every change is a compare-and-swap on the record's version; nothing is written unconditionally;
* staleness is decided on *this* process's monotonic clock: a held record whose version stayed the same
  for a whole lease (+ grace) is abandoned. A timestamp written by another machine is only ever displayed;
* every grant (create, re-acquire after release, steal) raises the fence by one, and records are never
  deleted, so the fence survives release;
* a write whose outcome is unknown (timeout, 5xx, lost response) is resolved by re-reading: if the record
  carries our owner id we hold it; audit entries carry an id for the same reason;
* a holder that cannot renew must stop trusting its lease at ``safe_deadline()``, which is measured from
  when its last successful write was *sent*, and is well before any waiter may steal.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from runvoy_core.errors import LockHeld, LockTimeout, StaleFence, UsageError
from runvoy_core.logging import get_logger
from runvoy_core.metrics import Metrics, default_metrics
from runvoy_core.models import LockHolder, LockRecord, LockState, OnConflict
from runvoy_core.ports.locks import LockRegister, Versioned

log = get_logger("runvoy.locks")

HolderStatus = Literal["running", "ended", "unknown"]
# the answer is checked at run time (anything else counts as "unknown"), so a plain str return type is fine
HolderStatusFn = Callable[[LockHolder], str]
Clock = Callable[[], float]
AUDIT_KEEP = 20
"""Audit entries kept per record (the newest); enough to explain the last few hand-overs."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _audit_id() -> str:
    return uuid.uuid4().hex[:12]


def _with_audit(record: LockRecord, entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [*record.audit, entry][-AUDIT_KEEP:]


def _dump(record: LockRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _load(value: Versioned) -> LockRecord:
    return LockRecord.model_validate(value.value)


def format_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600:02d}h"


SLOT_SEPARATOR = "#"
"""Slot k of lock ``name`` is the lock ``name#k``: ``#`` is not allowed in a lock name, so a slot never
collides with a lock of its own."""


def slot_names(name: str, slots: int) -> list[str]:
    """The locks behind a lock of capacity ``slots`` (just ``name`` for one)."""
    if slots <= 1:
        return [name]
    return [f"{name}{SLOT_SEPARATOR}{k}" for k in range(1, slots + 1)]


def describe_holder(record: LockRecord) -> str:
    """One line naming who holds a lock: execution, user, host/provider, since when (for people only)."""
    h = record.holder
    who = f"execution {h.execution_id}" if h.execution_id else f"owner {record.owner_id or '?'}"
    where = ", ".join(
        part
        for part in (
            f"user {h.user}" if h.user else "",
            f"host {h.host}" if h.host else "",
            f"provider {h.provider}" if h.provider else "",
        )
        if part
    )
    text = who + (f" ({where})" if where else "")
    if h.acquired_at is not None:
        since = h.acquired_at.astimezone(UTC)
        # display only: another machine's clock may be off, so this never decides anything
        age = format_age((datetime.now(UTC) - since).total_seconds())
        text += f" since {since:%Y-%m-%d %H:%M:%S} UTC ({age} ago)"
    return text + f", fence {record.fence}"


class LockMetrics:
    """The lock metrics, declared in one place (names are documented in docs/locks.md)."""

    def __init__(self, metrics: Metrics) -> None:
        self.acquire_seconds = metrics.histogram(
            "lock_acquire_seconds", "Time from asking for a lock to holding it.", ["lock"]
        )
        self.acquired = metrics.counter(
            "lock_acquired",
            "Lock grants, by how the lock was obtained (created|free|stolen|holder_ended).",
            ["lock", "how"],
        )
        self.conflicts = metrics.counter(
            "lock_conflicts", "Acquisitions that found the lock held by someone else.", ["lock", "mode"]
        )
        self.waits = metrics.counter("lock_waits", "Acquisitions that waited for another holder.", ["lock"])
        self.timeouts = metrics.counter("lock_timeouts", "Acquisitions that gave up waiting.", ["lock"])
        self.cancels = metrics.counter(
            "lock_cancels", "Holders asked to stop by an acquisition in mode cancel.", ["lock"]
        )
        self.steals = metrics.counter(
            "lock_steals", "Locks taken from a holder (reason: expired|holder_ended).", ["lock", "reason"]
        )
        self.renew_failures = metrics.counter(
            "lock_renew_failures", "Renewals that failed (kind: error|lost).", ["lock", "kind"]
        )
        self.lost = metrics.counter("lock_lost", "Leases their holder found taken over.", ["lock"])
        self.releases = metrics.counter(
            "lock_releases", "Releases (how: holder|force|holder_ended).", ["lock", "how"]
        )
        self.hold_seconds = metrics.histogram(
            "lock_hold_seconds", "How long a lease was held, from grant to release or loss.", ["lock"]
        )


class Lease:
    """A granted lock. Renew it every ``renew_interval``; stop relying on it at ``safe_deadline()``."""

    def __init__(
        self,
        manager: LockManager,
        record: LockRecord,
        version: str,
        *,
        sent_at: float,
        granted_at: float,
    ) -> None:
        assert record.owner_id is not None
        self._manager = manager
        self._record = record
        self.name = record.name
        self.owner_id: str = record.owner_id
        self.fence = record.fence
        self.version = version
        self.lease = manager.lease
        self._last_sent = sent_at
        self._granted_at = granted_at
        self._lost = False
        self._released = False
        self._handed_over = False  # released on our behalf by an observer: over, but not by us
        self._next_renewal = record.renewals
        self._pending: dict[int, float] = {}  # renewals number -> send time, for writes with unknown outcome
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        state = "lost" if self._lost else "released" if self._released else "held"
        return f"Lease({self.name!r}, fence={self.fence}, {state})"

    @property
    def record(self) -> LockRecord:
        return self._record

    @property
    def holder(self) -> LockHolder:
        return self._record.holder

    @property
    def renew_interval(self) -> float:
        return self.lease / 3

    def safe_deadline(self) -> float:
        """On the manager's clock: past this, without a successful renew, the holder must stop."""
        return self._last_sent + self.lease - self.renew_interval - self._manager.margin

    @property
    def lost(self) -> bool:
        return self._lost

    @property
    def released(self) -> bool:
        return self._released

    @property
    def handed_over(self) -> bool:
        """An observer saw the run end and released (or passed on) the lock for it: over, and not lost."""
        return self._handed_over

    def _mark_lost(self, why: str) -> None:
        if self._lost:
            return
        self._lost = True
        m = self._manager.metrics
        m.lost.inc(lock=self.name)
        m.hold_seconds.observe(self._manager.clock() - self._granted_at, lock=self.name)
        log.warning("lock.lost", lock=self.name, fence=self.fence, why=why)

    def _adopt(self, current: Versioned | None) -> bool:
        """Take the stored record as ours if it still is (held, our owner id); False means lost."""
        if current is None:
            self._mark_lost("record vanished")
            return False
        record = _load(current)
        if record.state != LockState.HELD or record.owner_id != self.owner_id:
            if self._released_for_us(record):
                # our run ended and an observer released the lock first: the hold is over, nothing was lost
                self._handed_over = True
                log.info("lock.released_by_observer", lock=self.name, fence=self.fence)
                return False
            self._mark_lost(f"now {record.state.value} by owner {record.owner_id}")
            return False
        self._record = record
        self.version = current.version
        self._next_renewal = max(self._next_renewal, record.renewals)
        sent = self._pending.pop(record.renewals, None)
        if sent is not None:  # one of our earlier renewals whose answer was lost did land
            self._last_sent = max(self._last_sent, sent)
        return True

    def renew(self) -> bool:
        """Extend the lease (CAS on version + owner). False means the lock is lost: stop the work.

        Raises the register's exception when the outcome cannot be settled (store outage); the caller
        retries until ``safe_deadline()``."""
        with self._mutex:
            if self._lost or self._released:
                return False
            m = self._manager
            register = m.register
            try:
                failure: Exception | None = None
                for _ in range(3):
                    self._next_renewal += 1
                    number = self._next_renewal
                    updated = self._record.model_copy(update={"renewals": number})
                    sent = m.clock()
                    try:
                        ok: bool | None = register.replace_if_version(self.name, _dump(updated), self.version)
                    except Exception as exc:
                        log.info("lock.renew_unknown", lock=self.name, error=str(exc))
                        self._pending[number] = sent
                        failure = exc
                        ok = None
                    if ok:
                        self._record = updated
                        self._last_sent = sent
                        try:
                            current = register.read(self.name)
                        except Exception as exc:
                            # written for sure; the new version is learnt on the next renew (CAS fails, re-read)
                            log.info("lock.renew_reread_failed", lock=self.name, error=str(exc))
                            return True
                        if not self._adopt(current):
                            m.metrics.renew_failures.inc(lock=self.name, kind="lost")
                            return False
                        return True
                    current = register.read(self.name)
                    if not self._adopt(current):
                        m.metrics.renew_failures.inc(lock=self.name, kind="lost")
                        return False
                    if ok is None and self._record.renewals == number:
                        return True
                    # still ours but our version was out of date (an earlier write landed): retry on the new one
                raise failure or RuntimeError(f"lock {self.name!r}: renewal kept racing with itself")
            except Exception:
                m.metrics.renew_failures.inc(lock=self.name, kind="error")
                raise

    def release(self) -> bool:
        """Mark the lock released (CAS). False if it was already lost to someone else."""
        with self._mutex:
            if self._lost:
                return False
            if self._released:
                return True
            if self._handed_over:
                return False
            m = self._manager
            entry = {
                "id": _audit_id(),
                "event": "released",
                "by": "holder",
                "owner_id": self.owner_id,
                "execution_id": self._record.holder.execution_id,
                "fence": self.fence,
                "at": _now_iso(),
            }
            for _ in range(3):
                released = self._record.model_copy(
                    update={
                        "state": LockState.RELEASED,
                        "owner_id": None,
                        "audit": _with_audit(self._record, entry),
                    }
                )
                try:
                    ok: bool | None = m.register.replace_if_version(self.name, _dump(released), self.version)
                except Exception as exc:
                    log.info("lock.release_unknown", lock=self.name, error=str(exc))
                    ok = None
                if ok:
                    return self._done_releasing()
                current = m.register.read(self.name)
                if current is not None and any(a.get("id") == entry["id"] for a in _load(current).audit):
                    return self._done_releasing()
                if current is not None and self._released_for_us(_load(current)):
                    # not ours to release any more (False), yet nothing was lost: no lock.lost, no lost metric
                    self._handed_over = True
                    return False
                if not self._adopt(current):
                    return False
            return False

    def _released_for_us(self, record: LockRecord) -> bool:
        """An observer saw our run end first and released (or handed over) the lock on its behalf: that is
        the normal end of a hold, not a lost lock."""
        return any(
            a.get("owner_id") == self.owner_id
            and a.get("fence") == self.fence
            and a.get("reason") == "holder execution ended"
            for a in record.audit
        )

    def _done_releasing(self, how: str = "holder") -> bool:
        self._released = True
        m = self._manager.metrics
        m.releases.inc(lock=self.name, how=how)
        m.hold_seconds.observe(self._manager.clock() - self._granted_at, lock=self.name)
        return True

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Acquisition:
    """One attempt to get a lock, advanced by ``poll()``; ``LockManager.acquire`` loops over it.

    Exposed so tests (and callers with their own event loop) can interleave polls with other work."""

    def __init__(
        self,
        manager: LockManager,
        name: str,
        holder: LockHolder,
        mode: OnConflict,
        timeout: float,
        stop_holder: Callable[[LockHolder], bool] | None = None,
    ) -> None:
        self.manager = manager
        self.stop_holder = stop_holder
        # mode cancel: the holders (owner ids) asked to stop, and when a stop was last tried
        self.stopped_owners: set[str] = set()
        self._stop_tried: dict[str, float] = {}
        self.name = name
        self.mode = OnConflict(mode)
        self.owner_id = uuid.uuid4().hex
        if holder.acquired_at is None:
            holder = holder.model_copy(update={"acquired_at": datetime.now(UTC)})
        self.holder = holder
        self.started = manager.clock()
        self.deadline = self.started + max(0.0, timeout)
        self.last_record: LockRecord | None = None
        self._seen_version: str | None = None
        self._seen_since = 0.0
        self._status: tuple[str, float, HolderStatus] | None = None  # version, checked at, answer
        self._maybe_sent: float | None = None  # earliest send of a grant write that may have landed
        self._maybe_how = "created"
        self._conflicted = False

    def poll(self) -> Lease | None:
        """Read once and take the lock if the rules allow; None means: held by someone else, poll again."""
        m = self.manager
        now = m.clock()
        current = m.register.read(self.name)
        if current is None:
            record = LockRecord(
                name=self.name, owner_id=self.owner_id, holder=self.holder, fence=1, lease_ms=m.lease_ms
            )
            return self._write(lambda value: m.register.create_if_absent(self.name, value), record, "created")
        record = _load(current)
        self.last_record = record
        if record.state == LockState.HELD and record.owner_id == self.owner_id:
            # an earlier grant write of ours landed although its answer was lost
            return self._granted(record, current.version, self._maybe_sent or now, self._maybe_how)
        if record.state == LockState.RELEASED:
            return self._take(current, record, "free")
        if not self._conflicted:
            self._conflicted = True
            m.metrics.conflicts.inc(lock=self.name, mode=self.mode.value)
            if self.mode in (OnConflict.WAIT, OnConflict.CANCEL):
                m.metrics.waits.inc(lock=self.name)
        status = self._holder_status(record, current.version, now)
        if status == "ended":
            return self._take(current, record, "holder_ended")
        if self.mode == OnConflict.CANCEL:
            self._stop_the_holder(record, now)
        if self.mode == OnConflict.FAIL:
            raise LockHeld(
                f"lock {self.name!r} is held by {describe_holder(record)}; "
                f"inspect it with: runvoy locks status {self.name}",
                hint=f"wait for it with --on-conflict wait, or inspect it with: runvoy locks status {self.name}",
                lock=self.name,
                holder=record.holder.model_dump(mode="json"),
                fence=record.fence,
            )
        if current.version != self._seen_version:
            self._seen_version = current.version
            self._seen_since = now
            return None
        # abandoned by its holder on our clock; but a detached run's holder is still running: never steal it
        expired = now - self._seen_since >= record.lease_ms / 1000 + m.grace
        if expired and self._holder_status(record, current.version, now, fresh=True) != "running":
            return self._take(current, record, "stolen")
        return None

    def _stop_the_holder(self, record: LockRecord, now: float) -> None:
        """Cancel-in-progress: ask the holder's run to stop (once it took, retried every status interval
        until then: a holder still starting has no task to stop yet), then wait for the lock as mode wait."""
        owner = record.owner_id or ""
        if self.stop_holder is None or owner in self.stopped_owners:
            return
        tried = self._stop_tried.get(owner)
        if tried is not None and now - tried < self.manager.status_interval:
            return
        self._stop_tried[owner] = now
        try:
            stopped = self.stop_holder(record.holder)
        except Exception as exc:  # the store or the provider failed: try again later, wait meanwhile
            log.info("lock.stop_holder_failed", lock=self.name, error=str(exc))
            return
        if stopped:
            self.stopped_owners.add(owner)
            self.manager.metrics.cancels.inc(lock=self.name)

    def _holder_status(
        self, record: LockRecord, version: str, now: float, fresh: bool = False
    ) -> HolderStatus:
        m = self.manager
        if m.holder_status is None:
            return "unknown"
        cached = self._status
        if cached is not None and not fresh and cached[0] == version and now - cached[1] < m.status_interval:
            return cached[2]
        answer: HolderStatus = "unknown"
        try:
            said = m.holder_status(record.holder)
        except Exception as exc:  # asking the store/provider failed: we know nothing
            log.info("lock.holder_status_failed", lock=self.name, error=str(exc))
        else:
            if said == "running":
                answer = "running"
            elif said == "ended":
                answer = "ended"
        self._status = (version, now, answer)
        return answer

    def _take(self, current: Versioned, record: LockRecord, how: str) -> Lease | None:
        audit = record.audit
        if how in ("stolen", "holder_ended"):
            audit = _with_audit(
                record,
                {
                    "id": _audit_id(),
                    "event": "stolen" if how == "stolen" else "released",
                    "by": "waiter" if how == "stolen" else "observer",
                    "reason": "lease expired" if how == "stolen" else "holder execution ended",
                    "stolen_from": record.holder.execution_id or record.owner_id,
                    "owner_id": record.owner_id,
                    "fence": record.fence,
                    "at": _now_iso(),
                },
            )
        granted = LockRecord(
            name=self.name,
            owner_id=self.owner_id,
            holder=self.holder,
            fence=record.fence + 1,
            lease_ms=self.manager.lease_ms,
            audit=audit,
        )
        version = current.version
        return self._write(
            lambda value: self.manager.register.replace_if_version(self.name, value, version), granted, how
        )

    def _write(self, op: Callable[[dict[str, Any]], bool], record: LockRecord, how: str) -> Lease | None:
        m = self.manager
        sent = m.clock()
        try:
            ok: bool | None = op(_dump(record))
        except Exception as exc:
            log.info("lock.grant_unknown", lock=self.name, error=str(exc))
            ok = None
        if ok is False:
            return None
        if self._maybe_sent is None:
            self._maybe_sent = sent
        self._maybe_how = how
        current = m.register.read(self.name)
        if current is None:
            return None
        stored = _load(current)
        if stored.state == LockState.HELD and stored.owner_id == self.owner_id:
            return self._granted(stored, current.version, self._maybe_sent, how)
        return None

    def _granted(self, record: LockRecord, version: str, sent: float, how: str) -> Lease:
        m = self.manager
        now = m.clock()
        metrics = m.metrics
        metrics.acquired.inc(lock=self.name, how=how)
        metrics.acquire_seconds.observe(now - self.started, lock=self.name)
        if how in ("stolen", "holder_ended"):
            metrics.steals.inc(lock=self.name, reason="expired" if how == "stolen" else "holder_ended")
        log.info("lock.acquired", lock=self.name, fence=record.fence, how=how)
        return Lease(m, record, version, sent_at=sent, granted_at=now)

    def timed_out(self) -> bool:
        return self.manager.clock() >= self.deadline

    @property
    def unsettled(self) -> bool:
        """A grant write of ours may have landed without our knowing (a lost answer)."""
        return self._maybe_sent is not None

    def abandon(self) -> None:
        """Give back a grant that landed although we went on without it (slots: we hold another one)."""
        try:
            current = self.manager.register.read(self.name)
            if current is None:
                return
            record = _load(current)
            if record.state == LockState.HELD and record.owner_id == self.owner_id:
                entry = {
                    "id": _audit_id(),
                    "event": "released",
                    "by": "holder",
                    "reason": "unused slot",
                    "at": _now_iso(),
                }
                self.manager._release_record(current, record, entry)
        except Exception as exc:  # it expires with its lease, or its holder's end frees it
            log.info("lock.abandon_failed", lock=self.name, error=str(exc))


class LockManager:
    """Acquire, inspect and release named locks kept in one provider's CAS register."""

    def __init__(
        self,
        register: LockRegister,
        *,
        lease: float = 30.0,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        metrics: Metrics | None = None,
        holder_status: HolderStatusFn | None = None,
        rng: random.Random | None = None,
        grace: float | None = None,
        margin: float | None = None,
        poll_min: float | None = None,
        poll_max: float | None = None,
        status_interval: float | None = None,
    ) -> None:
        if lease <= 0:
            raise ValueError("lease must be positive")
        self.register = register
        self.lease = float(lease)
        self.lease_ms = round(self.lease * 1000)
        self.clock = clock
        self.sleep = sleep
        self.metrics = LockMetrics(metrics or default_metrics())
        self.holder_status = holder_status
        self.rng = rng or random.Random()
        # grace covers clock-rate differences and the time a renew takes to land
        self.grace = grace if grace is not None else min(5.0, self.lease * 0.2)
        # margin keeps the holder's safe deadline clear of the renew's own round trip
        self.margin = margin if margin is not None else min(2.0, self.lease * 0.1)
        self.poll_min = poll_min if poll_min is not None else min(0.05, self.lease / 20)
        self.poll_max = poll_max if poll_max is not None else max(self.poll_min, min(2.0, self.lease / 6))
        # how often a waiter asks whether the holder's run has ended: a finished holder (even one whose
        # watcher died) should hand over within seconds, not a third of a lease
        self.status_interval = status_interval if status_interval is not None else max(1.0, self.lease / 15)

    # -- acquiring ------------------------------------------------------------------------------------
    def begin(
        self,
        name: str,
        holder: LockHolder,
        *,
        mode: OnConflict = OnConflict.FAIL,
        timeout: float = 600.0,
        stop_holder: Callable[[LockHolder], bool] | None = None,
    ) -> Acquisition:
        return Acquisition(self, name, holder, mode, timeout, stop_holder)

    def acquire(
        self,
        name: str,
        holder: LockHolder,
        *,
        mode: OnConflict = OnConflict.FAIL,
        timeout: float = 600.0,
        on_wait: Callable[[LockRecord, float], None] | None = None,
        stop_holder: Callable[[LockHolder], bool] | None = None,
    ) -> Lease:
        """Hold ``name`` or raise LockHeld (mode fail) / LockTimeout (modes wait and cancel, gave up).

        Mode cancel calls ``stop_holder(holder)`` for each run found holding the lock (it returns whether a
        stop was requested), then waits as mode wait does."""
        attempt = self.begin(name, holder, mode=mode, timeout=timeout, stop_holder=stop_holder)
        delay = self.poll_min
        while True:
            try:
                lease = attempt.poll()
            except LockHeld:
                raise
            except Exception as exc:
                # the register failed; in wait mode keep trying until the deadline, like a busy lock
                if attempt.mode == OnConflict.FAIL or attempt.timed_out():
                    raise
                log.warning("lock.poll_failed", lock=name, error=str(exc))
                lease = None
            if lease is not None:
                return lease
            now = self.clock()
            waited = now - attempt.started
            if now >= attempt.deadline:
                record = attempt.last_record
                held = f"still held by {describe_holder(record)}" if record else "the register did not answer"
                raise self.timeout_error(
                    name,
                    f"gave up waiting for lock {name!r} after {format_age(waited)}: {held}",
                    fence=record.fence if record else None,
                )
            if on_wait is not None and attempt.last_record is not None:
                on_wait(attempt.last_record, waited)
            delay = self.pause(delay, attempt.deadline - now)

    def acquire_queued(
        self,
        name: str,
        holder: LockHolder,
        *,
        timeout: float = 600.0,
        on_wait: Callable[[LockRecord, float], None] | None = None,
    ) -> Lease:
        """Hold ``name`` after every run that queued for it earlier (first come, first served; see
        runvoy_core.lock_queue). Raises LockTimeout after ``timeout``."""
        from runvoy_core.lock_queue import acquire_queued

        return acquire_queued(self, name, holder, timeout=timeout, on_wait=on_wait)

    def acquire_slot(
        self,
        name: str,
        slots: int,
        holder: LockHolder,
        *,
        mode: OnConflict = OnConflict.FAIL,
        timeout: float = 600.0,
        on_wait: Callable[[LockRecord, float], None] | None = None,
    ) -> Lease:
        """Hold one of the ``slots`` locks ``name#1`` … ``name#N``: a lock that up to N runs hold at once.

        Each slot is an ordinary lock (its own record, fence and lease); slots are tried in order and the
        first one free is taken. A register error on one slot ends the round: that slot is asked again
        first, so that a grant whose answer was lost is found before another slot is taken."""
        if slots <= 1:
            return self.acquire(name, holder, mode=mode, timeout=timeout, on_wait=on_wait)
        if OnConflict(mode) == OnConflict.CANCEL:
            raise UsageError(
                "--on-conflict cancel cannot be used with lock slots",
                hint="use --on-conflict wait or fail with --lock-slots",
            )
        attempts = [self.begin(n, holder, mode=mode, timeout=timeout) for n in slot_names(name, slots)]
        first = attempts[0]
        unsettled: Acquisition | None = None
        delay = self.poll_min
        while True:
            order = (
                attempts if unsettled is None else [unsettled] + [a for a in attempts if a is not unsettled]
            )
            unsettled = None
            held: list[LockRecord] = []
            for attempt in order:
                try:
                    lease = attempt.poll()
                except LockHeld:
                    if attempt.last_record is not None:
                        held.append(attempt.last_record)
                    continue
                except Exception as exc:
                    if attempt.mode == OnConflict.FAIL or attempt.timed_out():
                        raise
                    log.warning("lock.poll_failed", lock=attempt.name, error=str(exc))
                    unsettled = attempt
                    break
                if lease is not None:
                    for other in attempts:
                        if other is not attempt and other.unsettled:
                            other.abandon()
                    return lease
            if first.mode == OnConflict.FAIL:
                holders = "; ".join(f"{r.name}: {describe_holder(r)}" for r in held)
                raise LockHeld(
                    f"all {slots} slots of lock {name!r} are held ({holders}); "
                    f"inspect them with: runvoy locks list",
                    hint="wait for a free slot with --on-conflict wait, or inspect them with: runvoy locks list",
                    lock=name,
                )
            now = self.clock()
            waited = now - first.started
            if now >= first.deadline:
                raise self.timeout_error(
                    name,
                    f"gave up waiting for a slot of lock {name!r} after {format_age(waited)}: "
                    f"all {slots} slots still held",
                    inspect="runvoy locks list",
                )
            record = next((a.last_record for a in attempts if a.last_record is not None), None)
            if on_wait is not None and record is not None:
                on_wait(record, waited)
            delay = self.pause(delay, first.deadline - now)

    def timeout_error(
        self, name: str, message: str, *, fence: int | None = None, inspect: str | None = None
    ) -> LockTimeout:
        """The error for a wait that gave up (counted in the metrics)."""
        self.metrics.timeouts.inc(lock=name)
        inspect = inspect or f"runvoy locks status {name}"
        return LockTimeout(
            message, hint=f"raise --lock-timeout, or inspect it with: {inspect}", lock=name, fence=fence
        )

    def pause(self, delay: float, remaining: float) -> float:
        """Sleep before the next poll; returns the next delay. Equal jitter: waiters that started together
        spread out instead of polling in lockstep."""
        self.sleep(max(0.0, min(self.rng.uniform(delay / 2, delay), remaining)))
        return min(delay * 1.5, self.poll_max)

    # -- inspecting -----------------------------------------------------------------------------------
    def get(self, name: str) -> tuple[LockRecord, str] | None:
        current = self.register.read(name)
        if current is None:
            return None
        return _load(current), current.version

    def list(self) -> list[tuple[LockRecord, str]]:
        from runvoy_core.lock_queue import is_queue_key
        from runvoy_core.ports.optional import LockListing

        # a register that can leave the queues' tickets out reads only the locks (flat with the number of runs)
        entries = (
            self.register.list_locks() if isinstance(self.register, LockListing) else self.register.list()
        )
        return sorted(
            ((_load(value), value.version) for key, value in entries if not is_queue_key(key)),
            key=lambda rv: rv[0].name,
        )

    # -- releasing from outside -----------------------------------------------------------------------
    def force_release(self, name: str, expected_version: str, *, by: str) -> bool:
        """Release whoever holds ``name``, but only if the record is still the version the operator saw."""
        current = self.register.read(name)
        if current is None or current.version != expected_version:
            return False
        record = _load(current)
        if record.state != LockState.HELD:
            return False
        entry = {
            "id": _audit_id(),
            "event": "force_released",
            "by": by,
            "owner_id": record.owner_id,
            "execution_id": record.holder.execution_id,
            "fence": record.fence,
            "at": _now_iso(),
        }
        if self._release_record(current, record, entry):
            self.metrics.releases.inc(lock=name, how="force")
            log.warning("lock.force_released", lock=name, by=by, fence=record.fence)
            return True
        return False

    def release_if_holder_ended(self, name: str) -> bool:
        """Release ``name`` when its holder execution has ended (a detached run, a crashed watcher)."""
        if self.holder_status is None:
            return False
        current = self.register.read(name)
        if current is None:
            return False
        record = _load(current)
        if record.state != LockState.HELD:
            return False
        try:
            status = self.holder_status(record.holder)
        except Exception as exc:
            log.info("lock.holder_status_failed", lock=name, error=str(exc))
            return False
        if status != "ended":
            return False
        entry = {
            "id": _audit_id(),
            "event": "released",
            "by": "observer",
            "reason": "holder execution ended",
            "owner_id": record.owner_id,
            "execution_id": record.holder.execution_id,
            "fence": record.fence,
            "at": _now_iso(),
        }
        if self._release_record(current, record, entry):
            self.metrics.releases.inc(lock=name, how="holder_ended")
            return True
        return False

    def _release_record(self, current: Versioned, record: LockRecord, entry: dict[str, Any]) -> bool:
        released = record.model_copy(
            update={"state": LockState.RELEASED, "owner_id": None, "audit": _with_audit(record, entry)}
        )
        try:
            return self.register.replace_if_version(record.name, _dump(released), current.version)
        except Exception as exc:
            log.info("lock.release_unknown", lock=record.name, error=str(exc))
        after = self.register.read(record.name)
        return after is not None and any(a.get("id") == entry["id"] for a in _load(after).audit)


def why_not_held(register: LockRegister, name: str, fence: int, owner_id: str | None) -> str | None:
    """Why the holder of grant ``fence`` (owner ``owner_id``) no longer holds ``name``, or None if it does.
    Unlike ``check_fence`` this also counts a lock released by force that nobody took yet: its holder may
    not go on, since the next taker would run alongside it."""
    current = register.read(name)
    if current is None:
        return None  # no register entry to contradict the holder (``check_fence`` agrees)
    record = _load(current)
    if record.fence > fence:
        return f"lock {name!r} was granted to another run (fence {record.fence} after this run's {fence})"
    if record.fence == fence and record.state != LockState.HELD:
        released = next((a for a in reversed(record.audit) if a.get("fence") == fence), None)
        by = f" by {released.get('by')}" if released and released.get("by") else ""
        return f"lock {name!r} was released{by} while this run held it"
    if owner_id is not None and record.fence == fence and record.owner_id not in (None, owner_id):
        return f"lock {name!r} is held by another owner under the same grant"
    return None


def check_fence(register: LockRegister, name: str, fence: int) -> None:
    """Refuse a write from the holder of grant ``fence`` when a newer grant of ``name`` exists."""
    current = register.read(name)
    if current is None:
        return
    record = _load(current)
    if record.fence > fence:
        raise StaleFence(
            f"lock {name!r} was granted again (fence {record.fence}) after this writer's grant (fence {fence})",
            lock=name,
            fence=fence,
            current_fence=record.fence,
        )
