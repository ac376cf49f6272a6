"""Client-side rate limits and the one retry helper every provider uses (decisions 0018 and 0019).

A cloud's read quotas are part of its API: Cloud Logging answers 60 ``entries.list`` per minute per project,
and five watchers polling every few seconds exhaust that. So each provider declares its services' quotas as
data (``Quota``), and every read of those services takes a token from a bucket shared by the whole process
(``RateLimits.limiter``), before the cloud has to refuse it. What gets refused anyway (another process, a
person's console, a smaller quota than declared) goes through ``retry_call``: exponential backoff with full
jitter, or the server's ``Retry-After`` when it sent one, bounded in attempts and in total time, ending in a
``TransientProviderError`` that the runner treats as "try again at the next poll".

Nothing here sleeps or reads the time except through a ``Clock``, so tests drive it with a manual one.
No cloud SDK is imported: a provider tells ``retry_call`` which of its errors are worth retrying.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from runvoy_core.errors import TransientProviderError

T = TypeVar("T")

MAX_RETRY_AFTER = 3600.0
"""The longest server-requested wait ``parse_retry_after`` returns (a larger one is read as this)."""


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for an HTTP-date ``Retry-After``)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


class RateLimited(TransientProviderError):
    """This process has used its share of a quota: the call was not sent (waiting would take too long)."""

    default_hint = (
        "too many runvoy watchers share this quota; the next poll tries again (fewer concurrent "
        "follows, or a quota increase and the provider's rate_limits setting, help)"
    )


@dataclass(frozen=True)
class Quota:
    """A read quota of one service (or operation family) of a cloud, and the share runvoy uses of it.

    ``per_second`` and ``burst`` define the token bucket: at most ``burst`` calls at once, then
    ``per_second`` on average. Choose them so that ``burst + per_second * window`` stays under the
    published limit for the window the cloud counts in."""

    service: str
    per_second: float
    burst: int
    published: str
    """The limit as the cloud documents it, for the docs and messages ("60 per minute per project")."""
    scope: str = "account"
    """What the cloud counts the limit per (project, account and region, subscription, ...)."""

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)):
            raise ValueError(f"quota {self.service}: per_second must be a positive number")
        if self.burst < 1:
            raise ValueError(f"quota {self.service}: burst must be at least 1")

    def limit_in(self, window: float) -> float:
        """The most calls the bucket lets through in any ``window`` seconds."""
        return self.burst + self.per_second * window


class TokenBucket:
    """A thread-safe token bucket. A caller *reserves* a token, possibly one that is only refilled later,
    and then sleeps (outside the lock) until it is due: callers are served in arrival order and the bucket
    never lets more than ``burst + rate * t`` calls through in any ``t`` seconds."""

    def __init__(self, rate: float, burst: float, clock: Clock = SYSTEM_CLOCK) -> None:
        if not (rate > 0 and math.isfinite(rate)) or burst < 1:
            raise ValueError("a token bucket needs a positive finite rate and a burst of at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._tokens = float(burst)
        self._stamp = clock.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> float:
        now = self.clock.monotonic()
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        return now

    def reserve(self, max_wait: float = math.inf) -> float | None:
        """Take one token; the seconds to wait before using it, or None (and nothing taken) when that wait
        would be longer than ``max_wait``."""
        with self._lock:
            self._refill()
            wait = max(0.0, (1.0 - self._tokens) / self.rate)
            if wait > max_wait:
                return None
            self._tokens -= 1.0
            return wait

    def acquire(self, max_wait: float = math.inf, *, what: str = "this service") -> None:
        """Wait for a token (at most ``max_wait`` seconds); RateLimited when it would take longer."""
        wait = self.reserve(max_wait)
        if wait is None:
            raise RateLimited(
                f"{what}: runvoy's share of the quota is used up for the next {self.delay():.1f}s"
            )
        self.clock.sleep(wait)

    def delay(self) -> float:
        """Seconds until a token would be free, taking nothing."""
        with self._lock:
            self._refill()
            return max(0.0, (1.0 - self._tokens) / self.rate)

    def hold(self, seconds: float) -> None:
        """The server asked us to wait: no token is handed out in this process before ``seconds`` pass."""
        if not seconds > 0:
            return
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 1.0 - self.rate * seconds)


@dataclass
class RateLimits:
    """The buckets of one process, by (provider, service, scope) and the quota's numbers: every client of
    one project (account, subscription) in this process shares one bucket per service."""

    clock: Clock = field(default_factory=lambda: SYSTEM_CLOCK)
    _quotas: dict[tuple[str, str], Quota] = field(default_factory=dict, init=False, repr=False)
    _buckets: dict[tuple[str, str, str, float, int], TokenBucket] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def declare(self, provider: str, quotas: Iterable[Quota]) -> None:
        """Add a provider's quotas; a service declared before keeps its numbers (a provider declares on
        every use, and a test may have declared a scaled-down model of the same quota first)."""
        with self._lock:
            for quota in quotas:
                self._quotas.setdefault((provider, quota.service), quota)

    def quota(self, provider: str, service: str) -> Quota:
        with self._lock:
            found = self._quotas.get((provider, service))
        if found is None:
            raise KeyError(f"provider {provider!r} declared no quota for {service!r}")
        return found

    def limiter(
        self,
        provider: str,
        service: str,
        scope: str = "",
        *,
        overrides: Mapping[str, float] | None = None,
    ) -> TokenBucket:
        """The bucket for ``service`` of ``provider`` in ``scope`` (a project, an account and region, a
        subscription). ``overrides`` maps services to a per-second rate the user set (after a quota
        increase); the burst is kept."""
        quota = self.quota(provider, service)
        if overrides and service in overrides:
            quota = replace(quota, per_second=float(overrides[service]))
        key = (provider, service, scope, quota.per_second, quota.burst)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(quota.per_second, quota.burst, self.clock)
            return bucket


PROCESS_LIMITS = RateLimits()
"""The process's buckets: every provider instance uses these unless a test gives it its own."""


MAX_RATE_LIMIT = 100_000


def check_rate_limits(value: Mapping[str, float], quotas: Iterable[Quota]) -> dict[str, float]:
    """A provider config's ``rate_limits``: known service names only, each above 0 and at most
    ``MAX_RATE_LIMIT`` per second (the one check every provider's config validator calls)."""
    known = {q.service for q in quotas}
    for service, rate in value.items():
        if service not in known:
            raise ValueError(f"no rate limit named {service!r}; known: {', '.join(sorted(known))}")
        if not 0 < rate <= MAX_RATE_LIMIT:
            raise ValueError(
                f"rate_limits.{service}: {rate} must be above 0 and at most {MAX_RATE_LIMIT} per second"
            )
    return dict(value)


def declare(provider: str, quotas: Iterable[Quota]) -> None:
    PROCESS_LIMITS.declare(provider, quotas)


def limiter(provider: str, service: str, scope: str = "") -> TokenBucket:
    return PROCESS_LIMITS.limiter(provider, service, scope)


# -- Retry-After -------------------------------------------------------------------------------------------


def parse_retry_after(value: object, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date (RFC 9110 10.2.3).
    None when the value is neither; otherwise a number in [0, MAX_RETRY_AFTER]. Never raises."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.isascii() and text.isdigit():
            seconds = float(int(text[:12]))  # a huge number is clamped anyway: never parse megabytes
        else:
            try:
                seconds = float(text)  # not in the RFC, but some servers send "1.5"
            except (ValueError, OverflowError):
                from_date = _http_date_delay(text, time.time() if now is None else now)
                if from_date is None:
                    return None
                seconds = from_date
    else:
        return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _http_date_delay(text: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    try:
        return when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None


# -- retry -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying. ``total`` bounds all the waiting of one call (backoff, Retry-After and the
    bucket together): a watcher must get back to renewing its lock and reading its task's state."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    total: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**retry)] (retry 0 is the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(retry, 60))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class Retryable:
    """A provider's verdict on a failed call: worth another try, why, and the server's Retry-After."""

    reason: str
    retry_after: float | None = None
    throttled: bool = True
    """A quota or rate refusal (429, RESOURCE_EXHAUSTED, ThrottlingException): the whole process's bucket
    for the service is held for the wait, not just this call."""


Classify = Callable[[BaseException], "Retryable | None"]
_rng = random.Random()


def retry_call(
    fn: Callable[[], T],
    *,
    what: str,
    classify: Classify,
    policy: RetryPolicy = RetryPolicy(),
    bucket: TokenBucket | None = None,
    clock: Clock = SYSTEM_CLOCK,
    rng: random.Random | None = None,
    on_retry: Callable[[int, Retryable, float], None] | None = None,
) -> T:
    """Call ``fn`` (which must be safe to repeat: a read, or an attempt that looks for its own earlier
    result first), taking a token from ``bucket`` before each attempt. An error ``classify`` returns a
    Retryable for is retried after the server's Retry-After or a full-jitter backoff; any other error
    propagates as it is. Gives up with TransientProviderError after ``policy.attempts`` attempts, or
    sooner when the next wait would go past ``policy.total`` seconds."""
    rng = rng or _rng
    start = clock.monotonic()
    verdict: Retryable | None = None
    attempt = 0
    for attempt in range(1, policy.attempts + 1):
        if bucket is not None:
            remaining = policy.total - (clock.monotonic() - start)
            bucket.acquire(max(0.0, remaining), what=what)
        try:
            return fn()
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None:
                raise
        if attempt == policy.attempts:
            break
        delay = verdict.retry_after if verdict.retry_after is not None else policy.backoff(attempt - 1, rng)
        elapsed = clock.monotonic() - start
        if verdict.throttled and bucket is not None and verdict.retry_after is not None:
            bucket.hold(delay)  # the server's wait applies to every caller in this process
        if elapsed + delay > policy.total:
            break
        if on_retry is not None:
            on_retry(attempt, verdict, delay)
        clock.sleep(delay)
    assert verdict is not None
    elapsed = clock.monotonic() - start
    raise TransientProviderError(
        f"{what}: {verdict.reason} (gave up after {attempt} attempt{'s' if attempt > 1 else ''} "
        f"in {elapsed:.1f}s)",
        hint="the service is throttling or unavailable; the next poll (or a later retry) tries again",
    )
