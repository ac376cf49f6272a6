"""An in-memory compare-and-swap register (the LockRegister port) and a fault-injecting wrapper for any
register: errors before a write is applied, and lost responses (applied, but the caller gets an error).

Used by the lock protocol's tests; also handy for a provider's tests that need a register without a store.
"""

from __future__ import annotations

import copy
import itertools
import random
import threading
from collections import deque
from typing import Any, Literal

from runvoy_core.errors import TransientProviderError
from runvoy_core.ports.locks import LockRegister, Versioned

Fault = Literal["error", "lost"]
WRITE_OPS = ("create_if_absent", "replace_if_version")


class MemoryLockRegister:
    """A strongly consistent register in a dict. Versions are a global counter, so a value written twice
    never gets back an old version (the ABA problem a CAS must not have)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[dict[str, Any], str]] = {}
        self._versions = itertools.count(1)
        self.writes = 0

    def _next(self) -> str:
        return str(next(self._versions))

    def create_if_absent(self, name: str, value: dict[str, Any]) -> bool:
        with self._lock:
            if name in self._data:
                return False
            self._data[name] = (copy.deepcopy(value), self._next())
            self.writes += 1
            return True

    def read(self, name: str) -> Versioned | None:
        with self._lock:
            entry = self._data.get(name)
            if entry is None:
                return None
            return Versioned(copy.deepcopy(entry[0]), entry[1])

    def replace_if_version(self, name: str, value: dict[str, Any], version: str) -> bool:
        with self._lock:
            entry = self._data.get(name)
            if entry is None or entry[1] != version:
                return False
            self._data[name] = (copy.deepcopy(value), self._next())
            self.writes += 1
            return True

    def list(self) -> list[tuple[str, Versioned]]:
        with self._lock:
            return [(n, Versioned(copy.deepcopy(v), ver)) for n, (v, ver) in sorted(self._data.items())]


class FaultyRegister:
    """Wraps a register and injects faults.

    * ``fail_next(kind, op=None, times=1)`` queues deterministic faults for the next matching calls;
    * ``error_rate`` / ``lost_rate`` inject random faults on writes (``read_error_rate`` on reads);
    * ``down = True`` makes every call fail (a store outage).

    ``"error"``: the call raises before reaching the register. ``"lost"``: the call reaches the register
    (a write is applied) but the caller gets an exception, as with a timeout after the server committed.
    """

    def __init__(
        self,
        inner: LockRegister,
        *,
        error_rate: float = 0.0,
        lost_rate: float = 0.0,
        read_error_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.error_rate = error_rate
        self.lost_rate = lost_rate
        self.read_error_rate = read_error_rate
        self.rng = rng or random.Random()
        self.down = False
        self._queue: deque[tuple[Fault, str | None]] = deque()
        self.injected: list[tuple[str, Fault]] = []

    def fail_next(self, kind: Fault, op: str | None = None, times: int = 1) -> None:
        for _ in range(times):
            self._queue.append((kind, op))

    def _fault_for(self, op: str) -> Fault | None:
        if self.down:
            return "error"
        if self._queue:
            kind, wanted = self._queue[0]
            if wanted is None or wanted == op:
                self._queue.popleft()
                if kind == "lost" and op not in WRITE_OPS:
                    kind = "error"  # a read has nothing to apply
                return kind
        if op in WRITE_OPS:
            roll = self.rng.random()
            if roll < self.error_rate:
                return "error"
            if roll < self.error_rate + self.lost_rate:
                return "lost"
        elif self.read_error_rate and self.rng.random() < self.read_error_rate:
            return "error"
        return None

    def _call(self, op: str, *args: Any) -> Any:
        fault = self._fault_for(op)
        if fault is not None:
            self.injected.append((op, fault))
        if fault == "error":
            raise TransientProviderError(f"injected error on {op}")
        result = getattr(self.inner, op)(*args)
        if fault == "lost":
            raise TransientProviderError(f"injected lost response on {op}")
        return result

    def create_if_absent(self, name: str, value: dict[str, Any]) -> bool:
        return bool(self._call("create_if_absent", name, value))

    def read(self, name: str) -> Versioned | None:
        result: Versioned | None = self._call("read", name)
        return result

    def replace_if_version(self, name: str, value: dict[str, Any], version: str) -> bool:
        return bool(self._call("replace_if_version", name, value, version))

    def list(self) -> list[tuple[str, Versioned]]:
        result: list[tuple[str, Versioned]] = self._call("list")
        return result
