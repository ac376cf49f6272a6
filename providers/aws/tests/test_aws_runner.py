"""The whole lifecycle through the Python API (runner + aws provider) against moto and the simulator."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from aws_test_tools import config_dict

from runvoy_core.models import Status
from runvoy_core.testing.sinks import RecordingSink as Sink
from runvoy_core.testing.waiting import DEADLINE, wait_for, wait_for_status


@pytest.fixture
def rv(moto, sim):  # type: ignore[no-untyped-def]
    from runvoy_core.api import Runvoy

    client = Runvoy(provider="aws", **config_dict(moto))
    client.provider.compute.start_retry_delay = 0.01
    client.provider.setup(dry_run=False)
    yield client
    client.close()


def test_a_failing_run_gives_its_output_exit_code_and_fargate_cost(rv) -> None:
    sink = Sink()
    execution = rv.run("echo hi; exit 3", log_sink=sink)
    assert sink.lines() == ["hi"]
    assert execution.status is Status.FAILED and execution.exit_code == 3
    assert execution.reason == "exited with code 3"
    assert execution.task_ref and execution.task_ref.startswith("arn:aws:ecs:")
    assert execution.cost is not None and execution.cost.provider == "aws"
    # Fargate bills at least one minute: 0.25 vCPU + 0.5 GB for 60 s in us-east-1
    expected = (Decimal("0.04048") * Decimal("0.25") + Decimal("0.004445") * Decimal("0.5")) * 60 / 3600
    assert abs(execution.cost.total - expected) < Decimal("0.000001"), execution.cost
    stored = rv.get(execution.id)
    assert stored.status is Status.FAILED and stored.cost is not None
    statuses = [e.status for e in rv.events(execution.id) if e.status]
    assert statuses[0] is Status.PENDING and statuses[-1] is Status.FAILED
    archive = rv.provider.clients.client("s3").get_object(
        Bucket="runvoy-test-archive", Key=f"logs/{execution.id}.log"
    )
    assert archive["Body"].read().decode().rstrip().endswith(" hi")


def test_a_succeeding_run(rv) -> None:
    execution = rv.run(["/bin/sh", "-c", "echo ok"], cpu="0.5", memory="1GiB")
    assert execution.status is Status.SUCCEEDED and execution.exit_code == 0
    assert execution.billed_start is not None and execution.billed_stop is not None


def test_the_timeout_ends_the_run_as_timed_out(rv) -> None:
    # the deadline counts from the record's creation: 3 s leave a loaded machine time to print "begin"
    started = time.monotonic()
    execution = rv.run("echo begin; sleep 300", timeout="3s", stop_grace="2s")
    assert execution.status is Status.TIMED_OUT
    assert time.monotonic() - started < 120
    assert [e.message for e in rv.logs(execution.id)] == ["begin"]


def test_detached_run_status_logs_and_kill(rv) -> None:
    execution = rv.submit("echo started; while true; do sleep 0.05; done", stop_grace="2s")
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


def test_a_task_that_fails_to_start_fails_the_run_with_the_reason(rv) -> None:
    execution = rv.run("true", image="registry.example/does-not-exist:1")
    assert execution.status is Status.FAILED
    assert "CannotPullContainerError" in (execution.reason or "")


def test_an_oom_kill_fails_the_run_with_the_reason(rv) -> None:
    execution = rv.run("kill -9 $$")
    assert execution.status is Status.FAILED and execution.exit_code == 137
    assert execution.reason.startswith("out of memory")


def test_reconcile_stops_an_orphan_task_and_finishes_a_stuck_record(rv, sim) -> None:
    from runvoy_core.ports import TaskSpec

    orphan = rv.provider.compute.start(
        TaskSpec(execution_id="0ff0ff0ff0ff", argv=["/bin/sh", "-c", "sleep 30"], stop_grace=1.0),
        "0ff0ff0ff0ff",
    )
    stuck = rv.submit("echo quick")
    assert sim.task_for(rv.get(stuck.id).task_ref).wait(DEADLINE) is not None  # it ended; nobody watched it
    actions = rv.reconcile()
    assert any(a.get("task_ref") == orphan and a["action"] == "stopped orphan task" for a in actions), actions
    assert rv.get(stuck.id).status is Status.SUCCEEDED
    assert sim.task_for(orphan).wait(DEADLINE) is not None  # the orphan really stopped


def test_cancel_in_progress_stops_the_holder_and_runs_after_it(rv) -> None:
    """--on-conflict cancel on Fargate: the holder's task is stopped through ECS, its lock (a DynamoDB
    item) changes hands, and the holder's record says it was superseded."""
    holder = rv.submit("echo holder; while true; do sleep 0.05; done", lock="deploy", stop_grace="2s")
    wait_for_status(rv, holder.id, Status.RUNNING)
    messages: list[str] = []
    newer = rv.run(
        "echo newer", lock="deploy", on_conflict="cancel", lock_timeout="60s", on_message=messages.append
    )
    assert newer.status is Status.SUCCEEDED and newer.fence == 2
    assert messages == [f"stopping {holder.id}, which holds lock 'deploy' (--on-conflict cancel)"]
    final = rv.wait(holder.id, timeout=DEADLINE)
    assert final.status is Status.CANCELLED and final.reason is not None and "superseded" in final.reason
