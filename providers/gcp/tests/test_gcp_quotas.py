"""Cloud Logging's read quota (60 ``entries.list`` per minute per project), modelled by the fake on a clock the
test controls: several watchers in one process keep under it, a 429 with Retry-After is waited out, and
persistent throttling is a TransientProviderError. Nothing here sleeps for real."""

from __future__ import annotations

from typing import Any

import pytest
from runvoy_gcp_testfakes.cloud_logging import WindowQuota

from runvoy_core.errors import TransientProviderError
from runvoy_core.ratelimit import RateLimits
from runvoy_core.testing.clock import ManualClock, SimulatedClock

LIST = "logging.entries.list"
JOB = "runvoy-quota"
WATCHERS = 5
POLL = 3.0  # each watcher reads every 3 s: 20 a minute, 100 a minute for five
MINUTES = 5


@pytest.fixture
def quota_provider(gcp_config: Any, fake_logging: Any) -> Any:
    """A provider with runvoy's own share of the quota (not the suite's raised one)."""
    from runvoy_gcp.provider import create_provider

    made = create_provider(gcp_config.model_copy(update={"rate_limits": {}}), None)
    made.clients.logging  # built once, before any thread uses it  # noqa: B018
    yield made
    made.close()


def ref_of(project: str, execution: str) -> str:
    return f"projects/{project}/locations/us-central1/jobs/{JOB}/executions/{execution}"


def write_line(fake_logging: Any, project: str, execution: str, n: int) -> None:
    fake_logging.store.append_line(
        project=project,
        job=JOB,
        location="us-central1",
        execution=execution,
        stream="stdout",
        timestamp=1_700_000_000.0 + n,
        text=f"{execution} line {n}",
    )


def calls_of(fake_logging: Any, project: str) -> list[Any]:
    return [
        c for c in fake_logging.server.calls_to(LIST) if c.body["resourceNames"] == [f"projects/{project}"]
    ]


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t - times[i] < window) for i in range(len(times))), default=0)


def test_five_watchers_in_one_process_stay_under_the_quota(
    quota_provider: Any, fake_logging: Any, project: str
) -> None:
    clock = SimulatedClock()
    quota_provider.clients.limits = RateLimits(clock=clock)
    fake_logging.server.clock = clock
    fake_logging.quota = WindowQuota(limit=60, window=60.0)
    polls = int(MINUTES * 60 / POLL)
    seen: dict[str, list[str]] = {f"e{i}": [] for i in range(WATCHERS)}
    transient: dict[str, int] = dict.fromkeys(seen, 0)

    def watcher(execution: str) -> None:
        ref, cursor = ref_of(project, execution), None
        n = 0
        while len(seen[execution]) < polls:
            if n < polls:  # the task writes a line between two polls, for as long as it runs
                write_line(fake_logging, project, execution, n)
                n += 1
            try:
                page = quota_provider.logs.read(ref, cursor, 1000)
            except TransientProviderError:
                transient[execution] += 1  # the runner logs it and reads again at its next poll
            else:
                cursor = page.cursor
                seen[execution].extend(e.message for e in page.events)
            clock.sleep(POLL)

    clock.run([lambda e=e: watcher(e) for e in seen])

    times = [c.at for c in calls_of(fake_logging, project)]
    assert fake_logging.quota.refused == 0
    assert most_in_any_window(times, 60.0) <= 60
    assert len(times) >= 48 * MINUTES  # the share runvoy keeps to was used, not wasted
    for execution, messages in seen.items():  # slower, but no line lost or repeated
        assert messages == [f"{execution} line {n}" for n in range(polls)]
    # demand (100 a minute) was above the quota: the watchers waited for their turn instead
    assert clock.monotonic() - 1000.0 > MINUTES * 60 * 1.5


def test_a_429_with_retry_after_is_waited_out_then_succeeds(
    quota_provider: Any, fake_logging: Any, project: str
) -> None:
    clock = ManualClock()
    quota_provider.clients.limits = RateLimits(clock=clock)
    fake_logging.server.clock = clock
    fake_logging.quota = WindowQuota(limit=3, window=8.0)
    for n in range(4):
        write_line(fake_logging, project, "e1", n)
    ref = ref_of(project, "e1")
    for _ in range(3):
        assert len(quota_provider.logs.read(ref, None, 1000).events) == 4
    assert len(quota_provider.logs.read(ref, None, 1000).events) == 4  # refused once, then served
    calls = calls_of(fake_logging, project)
    assert [c.status for c in calls] == [200, 200, 200, 429, 200]
    assert calls[4].at - calls[3].at >= 8.0  # the Retry-After the fake sent
    assert 8.0 in clock.sleeps


def test_an_injected_429_with_an_http_date_retry_after_is_honoured(
    quota_provider: Any, fake_logging: Any, project: str
) -> None:
    from email.utils import formatdate

    clock = ManualClock()
    quota_provider.clients.limits = RateLimits(clock=clock)
    fake_logging.server.clock = clock
    write_line(fake_logging, project, "e1", 0)
    # an HTTP date is read against the real wall clock: 5 s from now, give or take a loaded machine
    import time

    fake_logging.server.faults.add(
        LIST, status=429, headers={"Retry-After": formatdate(time.time() + 5, usegmt=True)}
    )
    assert len(quota_provider.logs.read(ref_of(project, "e1"), None, 1000).events) == 1
    assert [s for s in clock.sleeps if s > 0] and 0 < max(clock.sleeps) <= 5.0


def test_persistent_throttling_is_a_transient_error(
    quota_provider: Any, fake_logging: Any, project: str
) -> None:
    clock = ManualClock()
    quota_provider.clients.limits = RateLimits(clock=clock)
    fake_logging.server.clock = clock
    write_line(fake_logging, project, "e1", 0)
    fault = fake_logging.server.faults.add(LIST, status=429, headers={"Retry-After": "2"}, times=1000)
    with pytest.raises(TransientProviderError, match=r"read Cloud Logging: .*gave up after 4 attempts"):
        quota_provider.logs.read(ref_of(project, "e1"), None, 1000)
    assert fault.hits == 4 and clock.sleeps.count(2.0) == 3
    fault.times = 0
    assert len(quota_provider.logs.read(ref_of(project, "e1"), None, 1000).events) == 1


def test_a_retry_after_longer_than_a_poll_can_wait_ends_the_read_at_once(
    quota_provider: Any, fake_logging: Any, project: str
) -> None:
    clock = ManualClock()
    quota_provider.clients.limits = RateLimits(clock=clock)
    fake_logging.server.clock = clock
    write_line(fake_logging, project, "e1", 0)
    fake_logging.server.faults.add(LIST, status=429, headers={"Retry-After": "45"}, times=1)
    with pytest.raises(TransientProviderError):
        quota_provider.logs.read(ref_of(project, "e1"), None, 1000)
    # the other watchers of the project do not send anything during those 45 s
    with pytest.raises(TransientProviderError):
        quota_provider.logs.read(ref_of(project, "e1"), None, 1000)
    assert len(calls_of(fake_logging, project)) == 1
    clock.advance(45.0)
    assert len(quota_provider.logs.read(ref_of(project, "e1"), None, 1000).events) == 1


def test_the_declared_share_stays_under_the_published_quota() -> None:
    from runvoy_gcp.quotas import LOGGING_READS, QUOTAS

    (logging_reads,) = [q for q in QUOTAS if q.service == LOGGING_READS]
    assert logging_reads.limit_in(60.0) <= 60  # 60 entries.list per minute per project


RUN = "run.projects.locations.jobs.run"


def start_spec(command: str, execution_id: str) -> Any:
    from runvoy_core.models import ExecutionRequest
    from runvoy_core.ports import TaskSpec

    request = ExecutionRequest(command=command)
    return TaskSpec.from_request(
        execution_id, request, env={"RUNVOY_EXECUTION_ID": execution_id}, request_id=None
    )


def test_a_throttled_run_honours_retry_after_and_starts_once(
    provider: Any, fake_run: Any, project: str
) -> None:
    clock = ManualClock()
    provider.clients.limits = RateLimits(clock=clock)
    fake_run.server.faults.add(RUN, status=429, headers={"Retry-After": "6"}, times=1)
    ref = provider.compute.start(start_spec("echo once", "k1"), "k1")
    assert [n for n in fake_run.executions if f"/{project}/" in n] == [ref]
    assert 6.0 in clock.sleeps  # the core helper waited as told, on the injected clock


def test_a_job_deleted_behind_runvoys_back_is_created_again(
    provider: Any, fake_run: Any, project: str
) -> None:
    first = provider.compute.start(start_spec("echo one", "k2"), "k2")
    job = first.rsplit("/executions/", 1)[0]
    provider.clients.jobs.delete_job(name=job).result(timeout=30)
    second = provider.compute.start(start_spec("echo two", "k3"), "k3")
    assert second.startswith(job + "/executions/") and second != first
