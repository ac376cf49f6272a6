"""Clocks for tests of rate limits and retries (runvoy_core.ratelimit.Clock): nothing sleeps for real.

- ``ManualClock``: one thread; ``sleep`` moves time forward at once and records the wait.
- ``SimulatedClock``: several threads in virtual time. ``sleep`` blocks until the driver moves time, and the
  driver (``run``) moves it only when every participant thread is asleep, to the earliest wake-up. No call
  is ever in flight while time moves, so a server that reads the same clock sees each call at the time the
  caller made it: counts per window are exact, whatever the machine's load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

EPOCH = 1_800_000_000.0
"""Wall-clock seconds at monotonic 0 (an HTTP-date Retry-After is computed against this)."""


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        return EPOCH + self.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self._now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass
class _Sleeper:
    deadline: float
    woken: bool = False


@dataclass
class SimulatedClock:
    now: float = 1000.0
    real_timeout: float = 120.0
    """Real seconds the driver waits for the participants to fall asleep before failing the test."""
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _sleepers: list[_Sleeper] = field(default_factory=list, init=False, repr=False)
    _running: int = field(default=0, init=False, repr=False)
    errors: list[BaseException] = field(default_factory=list, init=False)

    def monotonic(self) -> float:
        with self._cond:
            return self.now

    def time(self) -> float:
        return EPOCH + self.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._cond:
            sleeper = _Sleeper(self.now + seconds)
            self._sleepers.append(sleeper)
            self._cond.notify_all()
            while not sleeper.woken:
                self._cond.wait()

    def run(self, targets: list[Callable[[], None]]) -> None:
        """Run each target in its own thread, moving time whenever all of them sleep; return when all
        have returned (re-raising the first error one of them raised)."""

        def wrap(target: Callable[[], None]) -> Callable[[], None]:
            def body() -> None:
                try:
                    target()
                except BaseException as exc:
                    self.errors.append(exc)
                finally:
                    with self._cond:
                        self._running -= 1
                        self._cond.notify_all()

            return body

        with self._cond:
            self._running = len(targets)
        threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
        for thread in threads:
            thread.start()
        with self._cond:
            while self._running:
                limit = time.monotonic() + self.real_timeout
                while self._running and len(self._sleepers) < self._running:
                    remaining = limit - time.monotonic()
                    if remaining <= 0:
                        raise AssertionError("simulated threads neither slept nor ended in time")
                    self._cond.wait(remaining)
                if not self._running:
                    break
                self.now = max(self.now, min(s.deadline for s in self._sleepers))
                due = [s for s in self._sleepers if s.deadline <= self.now]
                for sleeper in due:
                    sleeper.woken = True
                    self._sleepers.remove(sleeper)
                self._cond.notify_all()
        for thread in threads:
            thread.join()
        if self.errors:
            raise self.errors[0]
