"""The shared poller (runvoy_core.polling, decision 0026) over real local tasks: who is in a round, who is
woken by it, and what a failed round does. The local compute answers ``describe``; ``Batching`` adds the
optional ``status_many`` on top of it, recording every batch it is asked for."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from runvoy_core.errors import TransientProviderError
from runvoy_core.models import ExecutionRequest, new_execution_id
from runvoy_core.polling import CALLS, DESCRIBE, STATUS_MANY, SharedPoller
from runvoy_core.ports import TaskPhase, TaskSpec, TaskState
from runvoy_core.ports.optional import BatchStatus
from runvoy_core.providers.local.compute import LocalCompute
from runvoy_core.testing.waiting import DEADLINE, wait_for


class Batching:
    """The local compute with a batch read: one ``describe`` per ref, the refs of each call recorded."""

    def __init__(self, compute: LocalCompute) -> None:
        self.compute = compute
        self.batches: list[list[str]] = []
        self.fail_next = False

    def describe(self, ref: str) -> TaskState:
        return self.compute.describe(ref)

    def status_many(self, refs: Sequence[str]) -> dict[str, TaskState]:
        self.batches.append(list(refs))
        if self.fail_next:
            self.fail_next = False
            raise TransientProviderError("injected: the whole batch failed")
        return {ref: self.compute.describe(ref) for ref in refs}


@pytest.fixture
def compute(runvoy_home: Path) -> Iterator[LocalCompute]:
    yield LocalCompute(runvoy_home)


def start(compute: LocalCompute, command: str) -> str:
    execution_id = new_execution_id()
    spec = TaskSpec.from_request(execution_id, ExecutionRequest(command=command), env={}, request_id=None)
    return compute.start(spec, execution_id)


def gated(gate: Path) -> str:
    return f"while [ ! -f {gate} ]; do sleep 0.05; done"


def test_the_batching_double_is_a_batch_status(compute: LocalCompute) -> None:
    assert isinstance(Batching(compute), BatchStatus) and not isinstance(compute, BatchStatus)


def test_a_batch_round_wakes_a_watcher_whose_task_ended_long_before_its_interval(
    compute: LocalCompute, tmp_path: Path
) -> None:
    batching = Batching(compute)
    poller = SharedPoller(batching, provider="test-batch", poll_min=0.01)  # type: ignore[arg-type]
    slow_ref = start(compute, gated(tmp_path / "slow"))
    fast_ref = start(compute, gated(tmp_path / "fast"))
    slow, fast = poller.watch(slow_ref), poller.watch(fast_ref)
    slow.next(0)
    seen: list[TaskState] = []
    # an hour between states: only a round that shows a new phase can hand it one before the deadline
    waiter = threading.Thread(target=lambda: seen.append(slow.next(3600)), daemon=True)
    waiter.start()
    (tmp_path / "slow").touch()
    wait_for(lambda: compute.describe(slow_ref).ended, what="the slow watcher's task to end")
    # the other watcher's rounds include every subscribed task
    wait_for(lambda: (fast.next(0.01), seen)[1], what="a round to wake the slow watcher", interval=0)
    waiter.join(DEADLINE)
    assert seen[0].phase is TaskPhase.STOPPED
    assert all(set(batch) <= {slow_ref, fast_ref} for batch in batching.batches)
    slow.close()
    (tmp_path / "fast").touch()
    wait_for(lambda: fast.next(0.01).ended, what="the fast watcher's task to end", interval=0)
    fast.close()
    assert poller.watching == 0


def test_a_watcher_that_left_is_not_in_the_next_round(compute: LocalCompute, tmp_path: Path) -> None:
    batching = Batching(compute)
    poller = SharedPoller(batching, provider="test-batch", poll_min=0.01)  # type: ignore[arg-type]
    gate = tmp_path / "gate"
    first, second = start(compute, gated(gate)), start(compute, gated(gate))
    leaving, staying = poller.watch(first), poller.watch(second)
    leaving.next(0)
    staying.next(0)
    assert batching.batches[-1] == sorted([first, second])
    leaving.close()
    staying.next(0)
    assert batching.batches[-1] == [second]
    staying.close()
    rounds = poller.rounds
    gate.touch()
    assert poller.rounds == rounds  # nobody waits: there is no round and no call


def test_a_failed_round_fails_every_watcher_and_the_next_round_asks_again(
    compute: LocalCompute, tmp_path: Path
) -> None:
    batching = Batching(compute)
    poller = SharedPoller(batching, provider="test-batch", poll_min=0.01)  # type: ignore[arg-type]
    gate = tmp_path / "gate"
    refs = [start(compute, gated(gate)) for _ in range(3)]
    watches = [poller.watch(ref) for ref in refs]
    for watch in watches:
        watch.next(0)
    calls = len(batching.batches)
    batching.fail_next = True
    for watch in watches:
        with pytest.raises(TransientProviderError, match="injected"):
            watch.next(0)
    assert len(batching.batches) == calls + 1  # one failed round, seen by all three
    states = [watch.next(0) for watch in watches]
    assert [s.ref for s in states] == refs and len(batching.batches) == calls + 2
    assert batching.batches[-1] == sorted(refs)
    gate.touch()
    for watch in watches:
        watch.close()


def test_without_a_batch_read_a_round_describes_each_due_task_once(
    compute: LocalCompute, tmp_path: Path
) -> None:
    CALLS.reset()
    poller = SharedPoller(compute, provider="test-single", poll_min=0.01)
    gate = tmp_path / "gate"
    watches = [poller.watch(start(compute, gated(gate))) for _ in range(3)]
    for watch in watches:
        watch.next(0)
    assert poller.rounds == 1  # the first round asked about every task that had no state yet
    assert CALLS.of("test-single") == {DESCRIBE: 3}
    assert STATUS_MANY not in CALLS.of("test-single")
    gate.touch()
    for watch in watches:
        watch.close()


def test_the_local_provider_keeps_its_native_wait_and_polls_nothing_shared() -> None:
    from runvoy_core.api import Runvoy

    rv = Runvoy()
    CALLS.reset()
    assert rv.run("echo hi").exit_code == 0
    assert rv.runner.shared_polling is False
    assert rv.runner.poller.rounds == 0 and STATUS_MANY not in CALLS.of("local")
    assert CALLS.of("local").get(DESCRIBE, 0) >= 1  # its own describes, between native waits


def test_a_lone_watcher_is_never_polled_more_often_than_its_interval(
    compute: LocalCompute, tmp_path: Path
) -> None:
    # a lower bound that a slow machine only widens: rounds start when a watcher is due, never early
    poller = SharedPoller(compute, provider="test-single", poll_min=0.0)
    gate = tmp_path / "gate"
    watch = poller.watch(start(compute, gated(gate)))
    stamps: list[float] = []
    for _ in range(4):
        watch.next(0.2)
        assert watch.polled_at is not None
        stamps.append(watch.polled_at)
    gate.touch()
    watch.close()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.2 for gap in gaps), gaps
