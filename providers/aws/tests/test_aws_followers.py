"""Many runs followed by one process share one poller (decision 0026): one DescribeTasks per poll round for
all of them, counted as real SDK calls with botocore events against moto and the simulator."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from aws_test_tools import config_dict, inject_error

from runvoy_core.models import Execution, Status
from runvoy_core.testing.waiting import DEADLINE, wait_for

RUNS = 20


@pytest.fixture
def rv(moto, sim):  # type: ignore[no-untyped-def]
    from runvoy_core.api import Runvoy

    client = Runvoy(provider="aws", **config_dict(moto))
    client.provider.compute.start_retry_delay = 0.01
    client.provider.setup(dry_run=False)
    client.runner  # noqa: B018 - made once, before the threads share it
    yield client
    client.close()


class DescribeCalls:
    """The task ARNs of every DescribeTasks call, in order, and whether all runs were running then."""

    def __init__(self, rv: Any) -> None:
        self.calls: list[tuple[bool, int]] = []
        self.all_running = False
        self._lock = threading.Lock()
        rv.provider.clients.register("before-parameter-build.ecs.DescribeTasks", self._seen)

    def _seen(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls.append((self.all_running, len(params.get("tasks") or [])))


def gated(gate: Path) -> str:
    return f"echo up; while [ ! -f {gate} ]; do sleep 0.2; done; echo done"


def follow_all(rv: Any, commands: list[str]) -> tuple[list[threading.Thread], list[Execution]]:
    results: list[Execution] = []

    def one(command: str) -> None:
        results.append(rv.run(command, stop_grace="2s"))

    threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in commands]
    for thread in threads:
        thread.start()
    return threads, results


def running(rv: Any, count: int) -> bool:
    return len(rv.list(statuses={Status.RUNNING}, refresh=False, limit=100)) >= count


def test_twenty_followed_runs_cost_one_describe_tasks_per_poll_round(rv, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    calls = DescribeCalls(rv)
    poller = rv.runner.poller
    threads, results = follow_all(rv, [gated(gate)] * RUNS)
    wait_for(lambda: running(rv, RUNS), what=f"{RUNS} runs to be running")
    calls.all_running = True
    rounds = poller.rounds
    wait_for(lambda: poller.rounds >= rounds + 3, what="three poll rounds with every run followed")
    calls.all_running = False  # from here on, runs end and their watchers leave
    gate.touch()
    for thread in threads:
        thread.join(DEADLINE)
    assert len(results) == RUNS and {r.status for r in results} == {Status.SUCCEEDED}
    full = [n for all_running, n in calls.calls if all_running]
    assert full and set(full) == {RUNS}, f"DescribeTasks calls while all {RUNS} ran asked about {full}"
    # every DescribeTasks of the whole follow was a round of the shared poller: one call per round
    assert len(calls.calls) == poller.rounds
    assert poller.watching == 0


def test_a_watcher_that_leaves_is_no_longer_polled(rv, tmp_path: Path) -> None:
    calls = DescribeCalls(rv)
    poller = rv.runner.poller
    short, long = tmp_path / "short", tmp_path / "long"
    threads, results = follow_all(rv, [gated(short), gated(long)])
    wait_for(lambda: running(rv, 2), what="both runs to be running")
    short.touch()
    wait_for(lambda: len(results) == 1, what="the first run to end")
    assert poller.watching == 1
    seen = len(calls.calls)
    rounds = poller.rounds
    wait_for(lambda: poller.rounds >= rounds + 2, what="two rounds after the first run ended")
    later = calls.calls[seen:]
    long.touch()
    for thread in threads:
        thread.join(DEADLINE)
    assert later and {n for _, n in later} == {1}, later
    # nobody follows anything: no round runs, no call is made
    assert poller.watching == 0
    assert poller.rounds == len(calls.calls)


def test_a_failed_poll_round_is_retried_for_every_watcher(rv, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    calls = DescribeCalls(rv)
    poller = rv.runner.poller
    threads, results = follow_all(rv, [gated(gate)] * 3)
    wait_for(lambda: running(rv, 3), what="three runs to be running")
    # a 500 on each of botocore's 3 attempts: the round's call fails as a whole, a transient error
    injected = inject_error(
        rv.provider.clients.client("ecs"), "DescribeTasks", 3, code="InternalFailure", status=500
    )
    wait_for(lambda: injected[0] == 3, what="a round to fail")
    calls.all_running = True
    rounds = poller.rounds
    wait_for(lambda: poller.rounds >= rounds + 2, what="two rounds after the failed one")
    calls.all_running = False  # from here on, runs end and their watchers leave
    gate.touch()
    for thread in threads:
        thread.join(DEADLINE)
    assert [r.status for r in results] == [Status.SUCCEEDED] * 3
    after = [n for all_running, n in calls.calls if all_running]
    assert after and set(after) == {3}, after


def test_waits_on_submitted_runs_share_the_poller_too(rv, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    calls = DescribeCalls(rv)
    poller = rv.runner.poller
    submitted = [rv.submit(gated(gate)) for _ in range(5)]
    ended: list[Execution] = []
    waiters = [
        threading.Thread(target=lambda e=e: ended.append(rv.wait(e.id, timeout=DEADLINE)), daemon=True)
        for e in submitted
    ]
    for waiter in waiters:
        waiter.start()
    wait_for(lambda: poller.watching == 5, what="the five waits to follow their runs")
    wait_for(lambda: running(rv, 5), what="five runs to be running")
    calls.all_running = True
    rounds = poller.rounds
    wait_for(lambda: poller.rounds >= rounds + 3, what="three rounds with every wait following")
    calls.all_running = False  # from here on, runs end and their watchers leave
    gate.touch()
    for waiter in waiters:
        waiter.join(DEADLINE)
    assert sorted(e.status for e in ended) == [Status.SUCCEEDED] * 5
    assert {n for all_running, n in calls.calls if all_running} == {5}
    assert poller.watching == 0
