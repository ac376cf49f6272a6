"""The whole lifecycle through the Python API (runner + azure provider) against Azurite and the fake ARM."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from runvoy_azure_testfakes.helpers import spec

from runvoy_core.errors import LockHeld
from runvoy_core.models import Status
from runvoy_core.testing.sinks import RecordingSink as Sink
from runvoy_core.testing.waiting import DEADLINE, wait_for, wait_for_status


def test_a_failing_run_gives_its_output_exit_code_and_aci_cost(rv: Any, fake_aci: Any) -> None:
    sink = Sink()
    execution = rv.run("echo hi; exit 3", log_sink=sink)
    assert sink.lines() == ["hi"]
    assert execution.status is Status.FAILED and execution.exit_code == 3
    assert execution.reason == "exited with code 3"
    assert execution.task_ref == f"{rv.provider.config.resource_group}/runvoy-{execution.id}"
    assert execution.billed_start is not None and execution.billed_stop is not None
    assert execution.cost is not None and execution.cost.provider == "azure"
    stored = rv.get(execution.id)
    assert stored.status is Status.FAILED and stored.exit_code == 3
    statuses = [e.status for e in rv.events(execution.id) if e.status]
    assert statuses[0] is Status.PENDING and statuses[-1] is Status.FAILED
    # the group is gone (nothing left burning quota); its log lives on in the archive
    assert fake_aci.group(f"runvoy-{execution.id}") is None
    assert [e.message for e in rv.logs(execution.id)] == ["hi"]


def test_a_succeeding_run(rv: Any) -> None:
    execution = rv.run(["/bin/sh", "-c", "echo ok"], cpu="0.5", memory="1GiB")
    assert execution.status is Status.SUCCEEDED and execution.exit_code == 0
    assert execution.cost is not None and execution.cost.total >= 0


def test_the_timeout_ends_the_run_as_timed_out_with_its_logs(rv: Any) -> None:
    # the deadline counts from the record's creation: 3 s leave a loaded machine time to print "begin"
    started = time.monotonic()
    execution = rv.run("echo begin; sleep 300", timeout="3s", stop_grace="1s")
    assert execution.status is Status.TIMED_OUT
    assert time.monotonic() - started < 120
    assert [e.message for e in rv.logs(execution.id)] == ["begin"]


def test_detached_run_status_logs_follow_and_kill(rv: Any, fake_aci: Any) -> None:
    execution = rv.submit("echo started; while true; do sleep 0.05; done", stop_grace="1s")
    assert execution.status is Status.STARTING
    wait_for_status(rv, execution.id, Status.RUNNING)
    assert rv.status(execution.id[:6]).status is Status.RUNNING
    followed: list[str] = []

    def follow() -> None:
        for event in rv.logs(execution.id, follow=True):
            followed.append(event.message)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    wait_for(lambda: followed, what="the follower to print the first line")
    rv.kill(execution.id)
    final = rv.wait(execution.id, timeout=DEADLINE)
    reader.join(DEADLINE)
    assert not reader.is_alive(), "logs -f did not end with the run"
    assert final.status is Status.CANCELLED
    assert followed[:1] == ["started"]
    assert fake_aci.group(f"runvoy-{execution.id}") is None


def test_locks_keep_two_runs_apart_and_pass_the_fence(rv: Any) -> None:
    first = rv.submit(
        'echo "fence=$RUNVOY_FENCE lock=$RUNVOY_LOCK"; sleep 300', lock="nightly", stop_grace="1s"
    )
    assert first.fence == 1
    with pytest.raises(LockHeld):
        rv.run("true", lock="nightly")
    rv.kill(first.id, force=True)
    done = rv.wait(first.id, timeout=DEADLINE)
    assert done.status is Status.CANCELLED
    second = rv.run('echo "fence=$RUNVOY_FENCE"', lock="nightly")
    assert second.status is Status.SUCCEEDED and second.fence == 2
    assert [e.message for e in rv.logs(second.id)] == ["fence=2"]


def test_reconcile_finishes_a_record_nobody_watched_and_stops_an_orphan(rv: Any, fake_aci: Any) -> None:
    orphan = rv.provider.compute.start(spec("0ff0ff0ff0ff", "sleep 300"), "0ff0ff0ff0ff")
    stuck = rv.submit("echo quick")
    wait_for(
        lambda: (group := fake_aci.group(f"runvoy-{stuck.id}")) is not None and group.ended,
        what="the unwatched group to end",
    )
    actions = rv.reconcile()
    assert any(a.get("task_ref") == orphan and a["action"] == "stopped orphan task" for a in actions), actions
    assert rv.get(stuck.id).status is Status.SUCCEEDED
    assert [e.message for e in rv.logs(stuck.id)] == ["quick"]
    group = fake_aci.group("runvoy-0ff0ff0ff0ff")
    assert group.task is not None and group.task.wait(DEADLINE) is not None  # the orphan really stopped


def test_a_group_that_never_leaves_pending_fails_after_the_start_timeout(
    make_client: Any, fake_aci: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNVOY_START_TIMEOUT", "1s")
    rv = make_client()
    fake_aci.hold_pending = True
    started = time.monotonic()
    execution = rv.run("echo never")
    assert execution.status is Status.FAILED
    assert "did not start in time" in (execution.reason or ""), execution.reason
    assert execution.stop_requested == "start_timeout"
    assert time.monotonic() - started < DEADLINE  # the group never starts: only the start timeout ends it
    assert fake_aci.group(f"runvoy-{execution.id}") is None  # stopped and deleted
    assert fake_aci.launches[f"runvoy-{execution.id}"] == 1


def test_an_image_that_cannot_be_pulled_fails_the_run_with_the_reason(rv: Any) -> None:
    execution = rv.run("true", image="registry.example/does-not-exist:1")
    assert execution.status is Status.FAILED
    assert "Failed to pull image" in (execution.reason or "")
    assert execution.exit_code is None
