"""One poller per provider and process: the runs a process follows share their state polls (decision 0026).

A program that follows 20 runs at once (20 threads calling ``Runvoy.run``, or a server) used to poll each
task on its own: 20 DescribeTasks (GetExecution, GetContainerGroup) per poll interval, against quotas that
are counted per account. Now each watcher subscribes its task to the ``SharedPoller`` of its provider's
compute, and asks it for the next state with the interval it would have slept (``Watch.next``). The poller
runs *rounds*: a round asks the provider about every subscribed task in as few calls as it can — one
``status_many`` when the compute offers ``BatchStatus`` (ECS takes 100 ARNs per call), otherwise one
``describe`` per task that is due — and hands each watcher its task's result. There is no poller thread: the
first waiting watcher whose state is due runs the round while the others wait for it, so nothing is polled
when nobody waits, and a watcher that leaves (``close``) is never asked about again.

Cadence (decision 0027): a watcher gets a new state at most once per its interval, counted from the round
that gave it the last one, and may take one from a round up to half an interval early — which is what makes
watchers that started at different times fall into the same rounds. A round shows a watcher its task's new
phase at once, whenever that round ran: a task's end is seen in the next round anyone runs. Rounds are at
least the provider's ``poll_interval_min`` apart. A failed round (a transient error, throttling that the
provider's shared token buckets and retries did not absorb) is the failure of every task in it: each waiting
watcher sees it, as it saw its own failed ``describe`` before, and the next round tries all of them again.
"""

from __future__ import annotations

import collections
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runvoy_core.errors import TransientProviderError
from runvoy_core.ports import ComputePort, TaskPhase, TaskState
from runvoy_core.ports.optional import BatchStatus

STATUS_MANY = "status_many"
DESCRIBE = "describe"
LOGS_READ = "logs.read"


class CallCounts:
    """Calls made to providers' ports, per provider and operation (``status_many``, ``describe``,
    ``logs.read``), for benchmarks and for ``calls per run per minute``. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()

    def add(self, provider: str, operation: str, count: int = 1) -> None:
        with self._lock:
            self._counts[(provider, operation)] += count

    def of(self, provider: str) -> dict[str, int]:
        """Calls by operation for one provider."""
        with self._lock:
            return {op: n for (name, op), n in self._counts.items() if name == provider}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


CALLS = CallCounts()
"""The process's counts (read by benchmarks/bench_followers.py)."""


@dataclass(frozen=True)
class _Result:
    at: float
    """Monotonic time the round started: a state is at least this fresh."""
    state: TaskState | None
    error: BaseException | None


class _Watcher:
    __slots__ = ("closed", "due", "last_at", "phase", "ref", "result", "slack", "waiting")

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.due = 0.0
        self.slack = 0.0
        self.last_at: float | None = None
        self.phase: TaskPhase | None = None
        self.result: _Result | None = None
        self.waiting = False
        self.closed = False

    def deliverable(self, result: _Result) -> bool:
        if result.at >= self.due - self.slack:
            return True
        # a new phase is news however early it comes (the task ended: its watcher finalizes now)
        return result.state is not None and result.state.phase != self.phase


class Watch:
    """A watcher's subscription to its task's state; ``close`` (or leaving the ``with`` block) ends it."""

    def __init__(self, poller: SharedPoller, watcher: _Watcher) -> None:
        self._poller = poller
        self._watcher = watcher

    @property
    def ref(self) -> str:
        return self._watcher.ref

    @property
    def polled_at(self) -> float | None:
        """The monotonic time of the round that gave the last state (or error); None before the first."""
        return self._watcher.last_at

    def next(self, interval: float) -> TaskState:
        """The task's state from a round at least ``interval`` seconds after the one that gave the last
        (at once the first time), or sooner if a round shows the task in a new phase. Raises what the
        round's call raised (``TransientProviderError``: try again at the next call)."""
        return self._poller._next(self._watcher, interval)

    def close(self) -> None:
        self._poller._leave(self._watcher)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SharedPoller:
    """The rounds of one compute (see the module's docstring). ``provider`` names it in ``CALLS``."""

    def __init__(self, compute: ComputePort, *, provider: str, poll_min: float = 0.05) -> None:
        self.compute = compute
        self.provider = provider
        self.poll_min = max(0.0, poll_min)
        self.rounds = 0
        """Rounds run so far (tests and benchmarks read it)."""
        self._cond = threading.Condition()
        self._watchers: list[_Watcher] = []
        self._polling = False
        self._last_round: float | None = None

    @property
    def watching(self) -> int:
        with self._cond:
            return len(self._watchers)

    def watch(self, ref: str) -> Watch:
        watcher = _Watcher(ref)
        with self._cond:
            self._watchers.append(watcher)
        return Watch(self, watcher)

    def _leave(self, watcher: _Watcher) -> None:
        with self._cond:
            if not watcher.closed:
                watcher.closed = True
                self._watchers.remove(watcher)
                # the others may have been waiting for a round this watcher was the earliest due of
                self._cond.notify_all()

    # -- a watcher's wait ----------------------------------------------------------------------------------
    def _next(self, watcher: _Watcher, interval: float) -> TaskState:
        if watcher.closed:
            raise RuntimeError("this watch was closed")
        interval = max(interval, 0.0)
        with self._cond:
            watcher.due = time.monotonic() if watcher.last_at is None else watcher.last_at + interval
            watcher.slack = interval / 2
            watcher.waiting = True
            try:
                while True:
                    result = watcher.result
                    if result is not None and watcher.deliverable(result):
                        return self._deliver(watcher, result)
                    now = time.monotonic()
                    start = self._next_round_at()
                    if not self._polling and start <= now:
                        self._round()  # this watcher runs it, for everyone
                        continue
                    self._cond.wait(None if self._polling else max(start - now, 0.001))
            finally:
                watcher.waiting = False

    def _deliver(self, watcher: _Watcher, result: _Result) -> TaskState:
        watcher.result = None
        watcher.last_at = result.at
        if result.error is not None:
            raise result.error
        assert result.state is not None
        watcher.phase = result.state.phase
        return result.state

    def _next_round_at(self) -> float:
        """When the next round is due: when the first waiting watcher is due (the others may join it up to
        their slack early, never start one early), no sooner than ``poll_min`` after the last round."""
        wanted = [w.due for w in self._watchers if w.waiting]
        if not wanted:
            return float("inf")
        earliest = min(wanted)
        if self._last_round is not None:
            earliest = max(earliest, self._last_round + self.poll_min)
        return earliest

    # -- a round -------------------------------------------------------------------------------------------
    def _round(self) -> None:
        """One round; called with the lock held, which it lets go of while the provider is asked."""
        self._polling = True
        at = time.monotonic()
        self._last_round = at
        batch = isinstance(self.compute, BatchStatus)
        # a batch costs the same for one task as for all: every subscribed task is in it, so that any
        # watcher whose task changed hears of it; one by one, only the tasks a waiting watcher is due for
        refs = sorted(
            {
                w.ref
                for w in self._watchers
                if batch or w.last_at is None or (w.waiting and at >= w.due - w.slack)
            }
        )
        results: dict[str, _Result] = {}
        self._cond.release()
        try:
            results = self._poll(refs, at)
        finally:
            self._cond.acquire()
            for watcher in self._watchers:
                found = results.get(watcher.ref)
                if found is not None:
                    watcher.result = found
            self._polling = False
            self.rounds += 1
            self._cond.notify_all()

    def _poll(self, refs: Sequence[str], at: float) -> dict[str, _Result]:
        if not refs:
            return {}
        compute = self.compute
        if isinstance(compute, BatchStatus):
            CALLS.add(self.provider, STATUS_MANY)
            try:
                states = compute.status_many(refs)
            except Exception as exc:
                return {ref: _Result(at, None, exc) for ref in refs}
            missing = TransientProviderError("the provider's batch answer left this task out")
            return {
                ref: _Result(at, states[ref], None) if ref in states else _Result(at, None, missing)
                for ref in refs
            }
        results = {}
        for ref in refs:
            CALLS.add(self.provider, DESCRIBE)
            try:
                results[ref] = _Result(at, compute.describe(ref), None)
            except Exception as exc:
                results[ref] = _Result(at, None, exc)
        return results


_POLLERS: weakref.WeakKeyDictionary[Any, SharedPoller] = weakref.WeakKeyDictionary()
_POLLERS_LOCK = threading.Lock()


def poller_for(compute: ComputePort, *, provider: str, poll_min: float) -> SharedPoller:
    """The process's poller of this compute (one per provider instance), made on first use."""
    with _POLLERS_LOCK:
        poller = _POLLERS.get(compute)
        if poller is None:
            poller = SharedPoller(compute, provider=provider, poll_min=poll_min)
            _POLLERS[compute] = poller
        return poller
