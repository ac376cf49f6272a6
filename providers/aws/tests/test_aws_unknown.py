"""ECS is eventually consistent: DescribeTasks may answer MISSING for a task RunTask just started. A run is
never finalized on such an answer; it becomes LOST only after the grace period, a search by execution id,
and a stop of whatever task was found (so nothing runs on unwatched and billed)."""

from __future__ import annotations

import pytest
from aws_test_tools import MissingAnswers, config_dict

from runvoy_core.models import Status
from runvoy_core.testing.sinks import RecordingSink as Sink


@pytest.fixture
def rv(moto, sim):  # type: ignore[no-untyped-def]
    from runvoy_core.api import Runvoy

    client = Runvoy(provider="aws", **config_dict(moto))
    client.provider.compute.start_retry_delay = 0.01
    client.provider.setup(dry_run=False)
    yield client
    client.close()


def _ecs_task(rv, ref: str) -> dict:  # type: ignore[no-untyped-def]
    ecs = rv.provider.clients.client("ecs")
    return ecs.describe_tasks(cluster="runvoy", tasks=[ref])["tasks"][0]


def test_missing_answers_right_after_the_start_do_not_end_the_run(rv) -> None:
    answers = MissingAnswers(rv.provider.clients.client("ecs"), times=4)
    sink = Sink()
    execution = rv.run("echo still-here; exit 3", log_sink=sink)
    assert answers.count == 4
    assert execution.status is Status.FAILED and execution.exit_code == 3, execution.reason
    assert sink.lines() == ["still-here"]
    events = [e.event for e in rv.events(execution.id)]
    assert "task_unknown" in events  # seen, recorded, and not believed


def test_a_task_the_provider_keeps_forgetting_is_found_stopped_and_then_lost(rv, sim) -> None:
    """Past the grace period the task is searched for by execution id and stopped before the run is LOST."""
    execution = rv.submit("echo started; while true; do sleep 0.05; done")
    answers = MissingAnswers(rv.provider.clients.client("ecs"), times=None)
    rv.runner.unknown_grace = 0.0
    lost = rv.status(execution.id)
    assert lost.status is Status.LOST, lost.reason
    assert f"its task {execution.task_ref} was found and stopped" in (lost.reason or "")
    answers.stop()
    # the real task, as moto sees it, was told to stop
    assert _ecs_task(rv, execution.task_ref)["desiredStatus"] == "STOPPED"


def test_a_task_that_cannot_be_found_is_lost_without_a_stop(rv, sim) -> None:
    execution = rv.submit("echo started; while true; do sleep 0.05; done")
    ecs = rv.provider.clients.client("ecs")
    ecs.stop_task(cluster="runvoy", task=execution.task_ref, reason="test")
    MissingAnswers(ecs, times=None)
    rv.runner.unknown_grace = 0.0
    nobody = _FindNothing(ecs)
    lost = rv.status(execution.id)
    assert nobody.count >= 1
    assert lost.status is Status.LOST
    assert "no task was found for this execution" in (lost.reason or "")


class _FindNothing:
    """ListTasks (the search by execution id) finds nothing, as after ECS forgot a stopped task."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        import json

        import botocore.awsrequest
        from aws_test_tools import _event_name, _Raw

        self.count = 0

        def answer(request, **_):  # type: ignore[no-untyped-def]
            self.count += 1
            body = json.dumps({"taskArns": []}).encode()
            return botocore.awsrequest.AWSResponse(
                request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body)
            )

        client.meta.events.register(_event_name(client, "ListTasks"), answer)


def test_one_missing_answer_to_an_observer_is_only_noted(rv) -> None:
    execution = rv.submit("echo started; while true; do sleep 0.05; done", stop_grace="1s")
    MissingAnswers(rv.provider.clients.client("ecs"), times=1)
    seen = rv.status(execution.id)
    assert not seen.status.is_terminal and seen.unknown_since is not None
    again = rv.status(execution.id)  # the provider knows the task again
    assert not again.status.is_terminal and again.unknown_since is None
    killed = rv.kill(execution.id)
    assert killed.stop_requested == "cancel"
    final = rv.wait(execution.id, timeout=60)
    assert final.status is Status.CANCELLED
