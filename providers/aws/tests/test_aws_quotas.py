"""The read quotas of ECS (DescribeTasks: a bucket of 100 refilled at 20 a second) and CloudWatch Logs
(GetLogEvents: 25 a second), enforced by botocore event hooks in front of moto on a clock the test controls:
several watchers in one process keep under them, a Retry-After or a throttle that gets past botocore is
waited out by the core helper, and nothing sleeps for real."""

from __future__ import annotations

import json
import threading
from typing import Any

import botocore.awsrequest
import pytest
from aws_test_tools import wait_ended

from runvoy_core.ports import TaskSpec
from runvoy_core.ratelimit import RateLimits
from runvoy_core.testing.clock import ManualClock, SimulatedClock

WATCHERS = 5
POLLS = 60
POLL = 0.1  # ten polls a second per watcher: fifty of each call a second for five


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own backoff and adaptive rate limiting sleep for real: these tests are about the calls
    runvoy makes on the simulated clock."""
    import botocore.retries.adaptive
    import botocore.retries.standard

    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0
    )
    monkeypatch.setattr(
        botocore.retries.adaptive.ClientRateLimiter, "on_sending_request", lambda *a, **k: None
    )


@pytest.fixture(autouse=True)
def published_quotas(request: pytest.FixtureRequest) -> None:
    """runvoy's own share of the quotas, not the suite's raised rate_limits."""
    if "provider" in request.fixturenames:
        provider = request.getfixturevalue("provider")
        provider.clients.config = provider.config.model_copy(update={"rate_limits": {}})


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def error_response(url: str, status: int, code: str, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps({"__type": code, "message": "Rate exceeded"}).encode()
    return botocore.awsrequest.AWSResponse(
        url, status, {"Content-Type": "application/x-amz-json-1.1", **(headers or {})}, _Raw(body)
    )


def hook(client: Any, operation: str, handler: Any) -> None:
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{service}.{operation}", handler)


class ServiceQuota:
    """A service's throttling in front of moto: a token bucket as ECS documents it (``capacity`` refilled at
    ``rate`` a second), on the test's clock. Records when each call arrived and how many were refused."""

    def __init__(self, clock: Any, capacity: float, rate: float) -> None:
        self.clock, self.capacity, self.rate = clock, capacity, rate
        self.tokens, self.stamp = capacity, clock.monotonic()
        self.times: list[float] = []
        self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> Any:
        with self._lock:
            now = self.clock.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                self.refused += 1
                return error_response(request.url, 400, "ThrottlingException")
            self.tokens -= 1
            self.times.append(now)
        return None


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t - times[i] < window) for i in range(len(times))), default=0)


def spec(execution_id: str, command: str) -> TaskSpec:
    return TaskSpec(execution_id=execution_id, argv=["/bin/sh", "-c", command])


def test_five_watchers_in_one_process_stay_under_the_quotas(provider: Any, sim: Any) -> None:
    refs = []
    for i in range(WATCHERS):
        key = f"q{i}q{i}q{i}q{i}q{i}q{i}"
        refs.append(provider.compute.start(spec(key, f"echo {i}-a; echo {i}-b"), key))
    for ref in refs:
        wait_ended(provider, ref)
    clock = SimulatedClock()
    provider.clients.limits = RateLimits(clock=clock)
    # the published numbers; the 25-a-second quota is also checked as "at most 25 in any second" below
    describe = ServiceQuota(clock, capacity=100, rate=20)
    get_logs = ServiceQuota(clock, capacity=25, rate=25)
    hook(provider.clients.client("ecs"), "DescribeTasks", describe)
    hook(provider.clients.client("logs"), "GetLogEvents", get_logs)
    seen: dict[str, list[str]] = {ref: [] for ref in refs}

    def watcher(ref: str) -> None:
        cursor = None
        for _ in range(POLLS):
            assert provider.compute.describe(ref).ended
            page = provider.logs.read(ref, cursor)
            cursor = page.cursor
            seen[ref].extend(e.message for e in page.events)
            clock.sleep(POLL)

    clock.run([lambda r=r: watcher(r) for r in refs])

    assert describe.refused == 0 and get_logs.refused == 0
    assert len(describe.times) == len(get_logs.times) == WATCHERS * POLLS
    assert most_in_any_window(get_logs.times, 1.0) <= 25
    assert most_in_any_window(describe.times, 1.0) <= 100
    for i, ref in enumerate(refs):
        assert seen[ref] == [f"{i}-a", f"{i}-b"]


def test_a_503_with_retry_after_that_gets_past_botocore_is_waited_out(provider: Any, sim: Any) -> None:
    ref = provider.compute.start(spec("r1r1r1r1r1r1", "echo a"), "r1r1r1r1r1r1")
    wait_ended(provider, ref)
    clock = ManualClock()
    provider.clients.limits = RateLimits(clock=clock)
    sent: list[float] = []

    def unavailable(request: Any, **_: Any) -> Any:
        sent.append(clock.monotonic())
        if len(sent) <= 3:  # botocore's 3 attempts (max_attempts in the test config)
            return error_response(request.url, 503, "ServiceUnavailableException", {"Retry-After": "4"})
        return None

    hook(provider.clients.client("logs"), "GetLogEvents", unavailable)
    assert [e.message for e in provider.logs.read(ref).events] == ["a"]
    assert 4.0 in clock.sleeps
    assert sent[3] - sent[2] >= 4.0


def test_a_throttle_that_gets_past_botocore_is_retried_by_the_core_helper(provider: Any, sim: Any) -> None:
    ref = provider.compute.start(spec("r2r2r2r2r2r2", "exit 3"), "r2r2r2r2r2r2")
    wait_ended(provider, ref)
    clock = ManualClock()
    provider.clients.limits = RateLimits(clock=clock)
    injected = [0]

    def throttle(request: Any, **_: Any) -> Any:
        if injected[0] < 3:
            injected[0] += 1
            return error_response(request.url, 400, "ThrottlingException")
        return None

    hook(provider.clients.client("ecs"), "DescribeTasks", throttle)
    assert provider.compute.describe(ref).exit_code == 3
    assert injected[0] == 3
    assert len([s for s in clock.sleeps if s > 0]) <= 1  # one jittered backoff (it may draw 0)


def test_the_declared_shares_stay_under_the_published_quotas() -> None:
    from runvoy_aws.quotas import DESCRIBE_TASKS, GET_LOG_EVENTS, LIST_TASKS, QUOTAS

    quotas = {q.service: q for q in QUOTAS}
    assert quotas[GET_LOG_EVENTS].limit_in(1.0) <= 25  # 25 transactions per second
    for name in (DESCRIBE_TASKS, LIST_TASKS):  # ECS's bucket: 100 tokens, 20 a second
        assert quotas[name].burst <= 100 and quotas[name].per_second <= 20
