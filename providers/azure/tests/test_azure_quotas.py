"""ARM's subscription read quota, modelled by the fake ARM server on a clock the test controls: watchers in
one process keep under it, a 429 with Retry-After is waited out by the core helper (not the SDK's policy),
and persistent throttling is a TransientProviderError. Nothing here sleeps for real."""

from __future__ import annotations

from typing import Any

import pytest
from runvoy_azure_testfakes.aci_server import ReadQuota
from runvoy_azure_testfakes.helpers import spec, wait_ended

from runvoy_core.errors import TransientProviderError
from runvoy_core.ratelimit import Quota, RateLimits
from runvoy_core.testing.clock import ManualClock, SimulatedClock

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GROUP_GET = r"/containerGroups/runvoy-[0-9a-f]+$"
HOUR = 3600.0
SCALE = 10
"""The simulation divides ARM's 12,000 reads an hour, and runvoy's share of them, by this: the same
ratio of demand to supply in a tenth of the calls."""


@pytest.fixture
def quota_provider(make_provider: Any) -> Any:
    made = make_provider(rate_limits={})
    made.clients.limits = RateLimits()  # not the process's buckets: the setup reads must not use them
    return made


def gets(fake_aci: Any) -> list[float]:
    return [
        t for t, method, path in fake_aci.stamps if method == "GET" and path.startswith("/subscriptions/")
    ]


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t - times[i] < window) for i in range(len(times))), default=0)


def test_the_declared_share_stays_under_both_published_models() -> None:
    from runvoy_azure.quotas import ARM_READS, QUOTAS

    (arm,) = [q for q in QUOTAS if q.service == ARM_READS]
    assert arm.limit_in(HOUR) <= 12_000  # the hourly limit per subscription and principal
    assert arm.burst <= 250 and arm.per_second <= 25  # the token bucket ARM moved to in 2024


def test_five_watchers_in_one_process_stay_under_the_read_quota(quota_provider: Any, fake_aci: Any) -> None:
    from runvoy_azure.quotas import ARM_READS, PROVIDER, QUOTAS

    refs = []
    for i in range(5):
        key = f"dddd0000000{i}"
        refs.append(quota_provider.compute.start(spec(key, f"echo {i}-a; echo {i}-b"), key))
    for ref in refs:
        wait_ended(quota_provider, ref)
    (arm,) = [q for q in QUOTAS if q.service == ARM_READS]
    clock = SimulatedClock()
    limits = RateLimits(clock=clock)
    scaled = Quota(ARM_READS, arm.per_second / SCALE, max(1, arm.burst // SCALE), arm.published, arm.scope)
    limits.declare(PROVIDER, [scaled])
    quota_provider.clients.limits = limits
    fake_aci.clock = clock
    fake_aci.read_quota = ReadQuota(limit=12_000 // SCALE, window=HOUR)
    before = len(gets(fake_aci))
    seen: dict[str, list[str]] = {ref: [] for ref in refs}
    transient = [0]

    def watcher(ref: str) -> None:
        # a poll every 20 s, each a describe and a log read: 1,800 reads an hour for five watchers
        cursor = None
        for _ in range(int(HOUR / 20)):
            try:
                assert quota_provider.compute.describe(ref).ended
                page = quota_provider.logs.read(ref, cursor)
            except TransientProviderError:
                transient[0] += 1  # the runner logs it and polls again
            else:
                cursor = page.cursor
                seen[ref].extend(e.message for e in page.events)
            clock.sleep(20.0)

    clock.run([lambda r=r: watcher(r) for r in refs])

    times = gets(fake_aci)[before:]
    assert fake_aci.read_quota.refused == 0
    assert most_in_any_window(times, HOUR) <= 12_000 // SCALE
    assert len(times) >= scaled.per_second * HOUR * 0.9  # the share was used
    assert transient[0] > 0  # demand was 1.5 times the quota: polls were skipped, without a call
    for i, ref in enumerate(refs):  # every watcher got its lines in the end
        assert seen[ref] == [f"{i}-a", f"{i}-b"]


def test_a_429_with_retry_after_is_waited_out_then_succeeds(quota_provider: Any, fake_aci: Any) -> None:
    ref = quota_provider.compute.start(spec("dddd00000010", "echo ok"), "dddd00000010")
    wait_ended(quota_provider, ref)
    clock = ManualClock()
    quota_provider.clients.limits = RateLimits(clock=clock)
    fake_aci.clock = clock
    fake_aci.read_quota = ReadQuota(limit=2, window=7.0)
    before = len(gets(fake_aci))
    quota_provider.compute.describe(ref)
    quota_provider.compute.describe(ref)
    assert quota_provider.compute.describe(ref).exit_code == 0  # refused once, then served
    times = gets(fake_aci)[before:]
    assert len(times) == 4 and times[3] - times[2] >= 7.0
    assert fake_aci.read_quota.refused == 1 and 7.0 in clock.sleeps


def test_persistent_throttling_is_a_transient_error(quota_provider: Any, fake_aci: Any) -> None:
    ref = quota_provider.compute.start(spec("dddd00000011", "echo ok"), "dddd00000011")
    wait_ended(quota_provider, ref)
    clock = ManualClock()
    quota_provider.clients.limits = RateLimits(clock=clock)
    fault = fake_aci.inject("GET", GROUP_GET, status=429, headers={"Retry-After": "2"}, times=1000)
    with pytest.raises(TransientProviderError, match=r"gave up after 4 attempts"):  # retry_total 3
        quota_provider.compute.describe(ref)
    assert fault.hits == 4 and clock.sleeps.count(2.0) == 3
    fault.times = 0
    assert quota_provider.compute.describe(ref).exit_code == 0
