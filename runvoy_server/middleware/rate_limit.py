"""Token buckets per API key (and per address for failed sign-ins), in this process: each replica counts on
its own, so N replicas behind a balancer let a key through up to N times the rate (decision 1514). The
buckets are runvoy_core.ratelimit's; a full bucket is the same as no bucket, so idle ones are dropped."""

from __future__ import annotations

import threading

from runvoy_core.errors import TooManyRequests
from runvoy_core.ratelimit import SYSTEM_CLOCK, Clock, TokenBucket

MAX_BUCKETS = 100_000
"""Past this many remembered keys and addresses, the full (idle) buckets are forgotten."""


class Buckets:
    def __init__(self, rate: float, burst: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[TokenBucket, float]] = {}
        """key -> its bucket and when it was last used."""
        self._lock = threading.Lock()

    def _bucket(self, key: str) -> TokenBucket:
        now = self.clock.monotonic()
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._forget_idle(now)
                bucket = TokenBucket(self.rate, self.burst, self.clock)
            else:
                bucket = found[0]
            self._buckets[key] = (bucket, now)
            return bucket

    def _forget_idle(self, now: float) -> None:
        refill = self.burst / self.rate  # unused this long: the bucket is full again, as a new one would be
        for key in [k for k, (_, used) in self._buckets.items() if now - used >= refill]:
            del self._buckets[key]

    def take(self, key: str, what: str) -> None:
        """One request of ``key``; TooManyRequests (with ``retry_after``) when its bucket is empty."""
        if self._bucket(key).reserve(max_wait=0.0) is None:
            raise self.refusal(key, what)

    def spend(self, key: str) -> None:
        """Take a token from ``key``'s bucket if one is left (a failed sign-in), refusing nothing."""
        self._bucket(key).reserve(max_wait=0.0)

    def check(self, key: str, what: str) -> None:
        """Refuse when ``key``'s bucket is empty, taking nothing."""
        if self._bucket(key).delay() > 0.0:
            raise self.refusal(key, what)

    def refusal(self, key: str, what: str) -> TooManyRequests:
        wait = self._bucket(key).delay()
        return TooManyRequests(
            f"{what} sent more requests than this server allows ({self.rate:g}/s, bursts of {self.burst}); "
            f"retry in {wait:.1f}s",
            retry_after=round(wait, 3),
        )
