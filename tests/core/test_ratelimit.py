"""The token bucket, the Retry-After parser and the retry helper of runvoy_core.ratelimit, on manual clocks."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.errors import TransientProviderError
from runvoy_core.ratelimit import (
    MAX_RETRY_AFTER,
    Quota,
    RateLimited,
    RateLimits,
    Retryable,
    RetryPolicy,
    TokenBucket,
    parse_retry_after,
    retry_call,
)
from runvoy_core.testing.clock import EPOCH, ManualClock, SimulatedClock


class Throttled(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("429")
        self.retry_after = retry_after


def classify(exc: BaseException) -> Retryable | None:
    if isinstance(exc, Throttled):
        return Retryable("RESOURCE_EXHAUSTED", exc.retry_after)
    return None


# -- bucket ------------------------------------------------------------------------------------------------


def test_the_bucket_lets_a_burst_through_then_the_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.5)
    assert bucket.reserve() == pytest.approx(1.0)  # queued behind the previous reservation
    clock.advance(1.0)
    assert bucket.reserve() == pytest.approx(0.5)


def test_a_wait_longer_than_allowed_takes_nothing() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    bucket.acquire()
    assert bucket.reserve(max_wait=0.5) is None
    with pytest.raises(RateLimited):
        bucket.acquire(max_wait=0.5, what="read Cloud Logging")
    assert bucket.reserve(max_wait=1.0) == pytest.approx(1.0)  # the refusals took no token


def test_hold_delays_every_caller() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=10.0, burst=5, clock=clock)
    bucket.hold(7.0)
    assert bucket.delay() == pytest.approx(7.0)
    clock.advance(7.0)
    assert bucket.reserve() == 0.0


def test_the_registry_shares_one_bucket_per_service_and_scope() -> None:
    limits = RateLimits(clock=ManualClock())
    limits.declare("gcp", [Quota("logging.entries.list", 0.8, 10, "60 per minute per project", "project")])
    a = limits.limiter("gcp", "logging.entries.list", "p1")
    assert limits.limiter("gcp", "logging.entries.list", "p1") is a
    assert limits.limiter("gcp", "logging.entries.list", "p2") is not a
    assert (
        limits.limiter("gcp", "logging.entries.list", "p1", overrides={"logging.entries.list": 5}).rate == 5
    )
    with pytest.raises(KeyError):
        limits.limiter("gcp", "run.read")


def test_a_quota_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Quota("x", 0, 1, "none")
    with pytest.raises(ValueError):
        Quota("x", float("nan"), 1, "none")
    with pytest.raises(ValueError):
        Quota("x", 1, 0, "none")


@settings(max_examples=30, deadline=None)
@given(
    rate=st.floats(min_value=0.05, max_value=50),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=80),
)
def test_the_bucket_never_exceeds_burst_plus_rate_times_window(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    times: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        bucket.acquire()
        times.append(clock.monotonic())
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            window = times[j] - start
            assert j - i + 1 <= burst + rate * window + 1e-6


def test_threads_share_the_bucket_in_virtual_time() -> None:
    clock = SimulatedClock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    calls: list[float] = []

    def watcher() -> None:
        for _ in range(10):
            bucket.acquire()
            calls.append(clock.monotonic())
            clock.sleep(0.5)

    clock.run([watcher] * 4)
    assert len(calls) == 40
    calls.sort()
    for i in range(len(calls)):
        in_window = [t for t in calls[i:] if t - calls[i] <= 10.0]
        assert len(in_window) <= 2 + 10
    assert calls[-1] - calls[0] >= 37  # 40 calls at 1/s after a burst of 2


# -- Retry-After -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        (b"7", 7.0),
        (2.5, 2.5),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("99999999999999999999999", MAX_RETRY_AFTER),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", MAX_RETRY_AFTER),
    ],
)
def test_retry_after_values(value: object, expected: float | None) -> None:
    assert parse_retry_after(value, now=EPOCH) == expected


def test_retry_after_as_an_http_date() -> None:
    now = EPOCH
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.none(),
        st.booleans(),
        st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
        st.from_regex(
            r"\A[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{1,6} \d{1,2}:\d{1,2}:\d{1,2} [A-Z+\-0-9]{1,5}\Z"
        ),
    ),
    st.floats(min_value=0, max_value=4e9),
)
def test_retry_after_never_crashes_and_is_bounded(value: object, now: float) -> None:
    result = parse_retry_after(value, now=now)
    assert result is None or 0.0 <= result <= MAX_RETRY_AFTER


# -- retry -------------------------------------------------------------------------------------------------


def test_retry_after_is_waited_out_then_the_call_succeeds() -> None:
    clock = ManualClock()
    answers: list[BaseException | str] = [Throttled(retry_after=7.0), "ok"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    assert retry_call(call, what="read", classify=classify, clock=clock) == "ok"
    assert clock.sleeps == [7.0]


def test_backoff_is_full_jitter_and_doubles() -> None:
    clock = ManualClock()
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=4.0, total=1000)

    def call() -> None:
        raise Throttled()

    with pytest.raises(TransientProviderError, match=r"read: RESOURCE_EXHAUSTED \(gave up after 6 attempts"):
        retry_call(call, what="read", classify=classify, policy=policy, clock=clock, rng=random.Random(3))
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(clock.sleeps) == 5
    assert all(0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))


def test_the_total_time_bounds_the_retries() -> None:
    clock = ManualClock()
    policy = RetryPolicy(attempts=100, total=20.0)

    def call() -> None:
        raise Throttled(retry_after=6.0)

    with pytest.raises(TransientProviderError):
        retry_call(call, what="read", classify=classify, policy=policy, clock=clock)
    assert clock.sleeps == [6.0, 6.0, 6.0]  # a fourth wait would end past 20 s


def test_a_retry_after_beyond_the_budget_gives_up_at_once_and_holds_the_bucket() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=5.0, burst=5, clock=clock)

    def call() -> None:
        raise Throttled(retry_after=300.0)

    with pytest.raises(TransientProviderError):
        retry_call(call, what="read", classify=classify, bucket=bucket, clock=clock)
    assert clock.sleeps == [0.0]  # the first token only
    with pytest.raises(RateLimited):  # the rest of the process does not hammer the service either
        retry_call(lambda: "x", what="read", classify=classify, bucket=bucket, clock=clock)


def test_other_errors_are_not_retried() -> None:
    clock = ManualClock()
    calls = []

    def call() -> None:
        calls.append(1)
        raise KeyError("not found")

    with pytest.raises(KeyError):
        retry_call(call, what="read", classify=classify, clock=clock)
    assert calls == [1] and clock.sleeps == []


def test_each_attempt_takes_a_token() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock)
    answers: list[BaseException | str] = [Throttled(), Throttled(), "ok"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    policy = RetryPolicy(base_delay=0.0)
    assert retry_call(call, what="r", classify=classify, policy=policy, bucket=bucket, clock=clock) == "ok"
    assert clock.monotonic() - 1000.0 == pytest.approx(2.0)  # two refills of one token at 1/s
