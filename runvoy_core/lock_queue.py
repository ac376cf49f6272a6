"""First come, first served for a named lock: ``--on-conflict queue``.

A queued run takes a numbered ticket, then waits until every earlier ticket is done or abandoned; only then
does it try the lock itself, with mode wait's rules (runvoy_core.locks). The queue lives in the same
compare-and-swap register as the lock, in records the lock's own writes never touch (so a waiter's
heartbeat can never fail the holder's renewal):

- ``NAME~queue``: ``{"next": next ticket number, "head": no live ticket is below this, "recent": the owners
  of the last numbers given out}``;
- ``NAME~<n>``: ticket *n*: its owner, the waiting run, ``state`` (waiting | done | abandoned) and ``beat``,
  a counter its owner bumps every lease/3 while it waits.

``~`` is not allowed in a lock name, so these never collide with a lock, and ``LockManager.list`` skips
them. A waiter that stops beating (its process died) is skipped: a run behind it that sees its beat
unchanged for a whole lease + grace *on its own monotonic clock* marks it abandoned, with a compare-and-swap
on the version it watched (the rule the lock itself uses; no clock of another machine is ever read). A
ticket number that was taken but whose record never appeared (a crash between the two writes) is skipped
the same way. The register has no delete: a lock that is queued for keeps one small record per ticket.

The queue orders queue-mode runs among themselves; a run in mode wait or fail does not look at it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runvoy_core.logging import get_logger
from runvoy_core.models import LockHolder, LockRecord, OnConflict
from runvoy_core.ports.locks import LockRegister, Versioned

if TYPE_CHECKING:
    from runvoy_core.locks import Lease, LockManager

log = get_logger("runvoy.locks")

QUEUE_SEPARATOR = "~"
WAITING, DONE, ABANDONED = "waiting", "done", "abandoned"
ATTEMPTS = 5  # tries of one queue write or read whose outcome is unknown, before leaving a gap
RECENT = 64  # ticket numbers whose owner the counter remembers


def queue_key(name: str) -> str:
    return f"{name}{QUEUE_SEPARATOR}queue"


def ticket_key(name: str, ticket: int) -> str:
    return f"{name}{QUEUE_SEPARATOR}{ticket}"


def is_queue_key(key: str) -> bool:
    return QUEUE_SEPARATOR in key


class QueueTicket:
    """One run's place in the queue of a lock, from taking the ticket to giving it back."""

    def __init__(
        self,
        register: LockRegister,
        name: str,
        holder: LockHolder,
        *,
        lease: float,
        grace: float,
        clock: Callable[[], float],
    ) -> None:
        self.register = register
        self.name = name
        self.holder = holder
        self.clock = clock
        self.beat_every = lease / 3
        self.dead_after = lease + grace
        self.owner_id = uuid.uuid4().hex
        self.ticket = 0
        self._next_beat = 0.0
        self.lock_seen: Versioned | None = None  # the lock's record, as first_in_line last read it
        # tickets ahead of ours: number -> (the version we saw, since when on our clock)
        self._watch: dict[int, tuple[str | None, float]] = {}

    # -- taking and giving back ---------------------------------------------------------------------------
    def take(self) -> int:
        """The next ticket number, and its record, written as ours."""
        while True:
            number = self._next_number()
            record = {
                "owner_id": self.owner_id,
                "holder": self.holder.model_dump(mode="json"),
                "state": WAITING,
                "beat": 0,
            }
            # False: someone behind us decided this number was never used (we were slow between the two
            # writes), so take another
            if self._create(ticket_key(self.name, number), record, lambda found: found.value.get("owner_id")):
                break
        self.ticket = number
        self._next_beat = self.clock() + self.beat_every
        self._watch.clear()
        return number

    def _next_number(self) -> int:
        key = queue_key(self.name)
        while True:
            current = self.register.read(key)
            if current is None:
                first = {"next": 2, "head": 1, "recent": {"1": self.owner_id}}
                if self._create(key, first, owner_of=lambda found: found.value.get("recent", {}).get("1")):
                    return 1
                continue
            number = int(current.value["next"])
            # the last few numbers and their owners: a writer whose answer was lost finds its number
            # here even when others have taken numbers since
            recent = dict(list(current.value.get("recent", {}).items())[-(RECENT - 1) :])
            recent[str(number)] = self.owner_id
            value = {**current.value, "next": number + 1, "recent": recent}
            try:
                if self.register.replace_if_version(key, value, current.version):
                    return number
            except Exception as exc:  # an unknown outcome: the counter says whether it moved for us
                log.info("lock.queue_ticket_unknown", lock=self.name, error=str(exc))
                after = self._read_settled(key)
                if after is not None and after.value.get("recent", {}).get(str(number)) == self.owner_id:
                    return number
                # else the number may have gone to us all the same: those behind skip it after a lease

    def _create(self, key: str, value: dict[str, Any], owner_of: Callable[[Versioned], Any]) -> bool:
        """create_if_absent, retried while the register fails without writing: True when the record is
        ours, False when someone else's is there (or the register keeps failing: a gap the others skip)."""
        for _ in range(ATTEMPTS):
            try:
                return self.register.create_if_absent(key, value)
            except Exception as exc:
                log.info("lock.queue_create_unknown", lock=self.name, key=key, error=str(exc))
                found = self._read_settled(key)
                if found is not None:
                    return bool(owner_of(found) == self.owner_id)
        return False

    def _read_settled(self, key: str) -> Versioned | None:
        """A read after an unknown outcome, retried: giving up early would leave a gap behind."""
        for _ in range(ATTEMPTS - 1):
            try:
                return self.register.read(key)
            except Exception as exc:
                log.info("lock.queue_read_failed", lock=self.name, key=key, error=str(exc))
        return self.register.read(key)

    def finish(self, state: str) -> None:
        """Mark our ticket done (we hold the lock) or abandoned (we gave up). Best effort: a ticket left
        waiting is passed as soon as the lock shows its run as holder, or else after a lease."""
        for _ in range(ATTEMPTS):
            try:
                current = self._own_waiting_ticket()
                if current is None or self._rewrite_own(current, state=state):
                    return
            except Exception as exc:
                log.info("lock.queue_finish_failed", lock=self.name, error=str(exc))

    def _own_waiting_ticket(self) -> Versioned | None:
        """Our ticket's record while it is still ours and waiting (None: gone, finished, or given away)."""
        current = self.register.read(ticket_key(self.name, self.ticket))
        if current is None or current.value.get("owner_id") != self.owner_id:
            return None
        return current if current.value.get("state") == WAITING else None

    def _rewrite_own(self, current: Versioned, **changes: Any) -> bool:
        return self.register.replace_if_version(
            ticket_key(self.name, self.ticket), {**current.value, **changes}, current.version
        )

    # -- waiting ------------------------------------------------------------------------------------------
    def keep_alive(self) -> bool:
        """Bump our beat when it is due. False when others have given our place away (we stalled for
        longer than a lease): the caller takes a new ticket."""
        now = self.clock()
        if now < self._next_beat:
            return True
        current = self._own_waiting_ticket()
        if current is None:
            return False
        try:
            self._rewrite_own(current, beat=int(current.value.get("beat", 0)) + 1)
        except Exception as exc:  # try again at the next poll; a lease is long
            log.info("lock.queue_beat_failed", lock=self.name, error=str(exc))
            return True
        self._next_beat = now + self.beat_every
        return True

    def first_in_line(self) -> bool:
        """Whether every ticket before ours is done or abandoned (marking the dead ones abandoned)."""
        counter = self.register.read(queue_key(self.name))
        head = int(counter.value.get("head", 1)) if counter is not None else 1
        self.lock_seen = self.register.read(self.name)
        # the run the lock names (holding it, or its last holder) has had its turn, even if it could not
        # mark its ticket done
        lock = self.lock_seen
        served = lock.value.get("holder", {}).get("execution_id") if lock is not None else None
        # every ticket ahead is looked at (not just up to the first live one), so that a dead one further on
        # is already being timed when its turn comes
        live = [n for n in range(head, self.ticket) if not self._gone(n, served)]
        first_live = live[0] if live else None
        # the tickets up to the first live one are finished: later readers need not look at them again
        new_head = self.ticket if first_live is None else first_live
        if counter is not None and new_head > head:
            try:
                self.register.replace_if_version(
                    queue_key(self.name), {**counter.value, "head": new_head}, counter.version
                )
            except Exception as exc:  # only an optimisation: the next reader scans a little more
                log.info("lock.queue_head_failed", lock=self.name, error=str(exc))
        return first_live is None

    def _gone(self, number: int, served: str | None = None) -> bool:
        """Ticket ``number`` is done or abandoned, belongs to the run ``served`` by the lock, or has just
        been found dead and marked so."""
        key = ticket_key(self.name, number)
        current = self.register.read(key)
        if current is not None and current.value.get("state") in (DONE, ABANDONED):
            self._watch.pop(number, None)
            return True
        owner_run = (current.value.get("holder") or {}).get("execution_id") if current is not None else None
        if served is not None and owner_run == served:
            self._watch.pop(number, None)
            return True
        version = current.version if current is not None else None
        seen = self._watch.get(number)
        now = self.clock()
        if seen is None or seen[0] != version:
            self._watch[number] = (version, now)
            return False
        if now - seen[1] < self.dead_after:
            return False
        # no beat for a whole lease + grace on our clock: skip it, unless it moved meanwhile
        try:
            if current is None:
                marked = self.register.create_if_absent(
                    key, {"state": ABANDONED, "owner_id": None, "beat": 0}
                )
            else:
                marked = self.register.replace_if_version(
                    key, {**current.value, "state": ABANDONED}, current.version
                )
        except Exception as exc:
            log.info("lock.queue_skip_failed", lock=self.name, ticket=number, error=str(exc))
            return False
        if marked:
            log.warning("lock.queue_skipped", lock=self.name, ticket=number)
            self._watch.pop(number, None)
        return marked


def acquire_queued(
    manager: LockManager,
    name: str,
    holder: LockHolder,
    *,
    timeout: float,
    on_wait: Callable[[LockRecord, float], None] | None = None,
) -> Lease:
    """Hold ``name`` after every run that queued for it before us (``LockManager.acquire_queued``)."""
    queue = QueueTicket(
        manager.register, name, holder, lease=manager.lease, grace=manager.grace, clock=manager.clock
    )
    attempt = manager.begin(name, holder, mode=OnConflict.WAIT, timeout=timeout)
    delay = manager.poll_min
    try:
        while True:
            lease = None
            try:
                if not queue.ticket:
                    queue.take()
                elif not queue.keep_alive():
                    log.warning("lock.queue_requeued", lock=name, ticket=queue.ticket)
                    queue.take()
                if queue.first_in_line():
                    lease = attempt.poll()
            except Exception as exc:  # the register failed: keep trying until the deadline
                if attempt.timed_out():
                    raise
                log.warning("lock.poll_failed", lock=name, error=str(exc))
            if lease is not None:
                queue.finish(DONE)
                return lease
            now = manager.clock()
            waited = now - attempt.started
            if now >= attempt.deadline:
                raise manager.timeout_error(
                    name,
                    f"gave up waiting for lock {name!r} after {waited:.0f}s in its queue (ticket {queue.ticket})",
                )
            if on_wait is not None:
                seen = attempt.last_record
                if seen is None and queue.lock_seen is not None:  # not first in line yet
                    seen = LockRecord.model_validate(queue.lock_seen.value)
                if seen is not None:
                    on_wait(seen, waited)
            delay = manager.pause(delay, attempt.deadline - now)
    except BaseException:
        if queue.ticket:
            queue.finish(ABANDONED)  # those behind us need not wait a lease for a run that gave up
        raise


def waiting(register: LockRegister, name: str) -> list[tuple[int, LockHolder]]:
    """The runs queued for ``name``, in order (for `runvoy locks status`)."""
    counter = register.read(queue_key(name))
    if counter is None:
        return []
    out = []
    for number in range(int(counter.value.get("head", 1)), int(counter.value.get("next", 1))):
        found = register.read(ticket_key(name, number))
        if found is not None and found.value.get("state") == WAITING and found.value.get("holder"):
            out.append((number, LockHolder.model_validate(found.value["holder"])))
    return out
