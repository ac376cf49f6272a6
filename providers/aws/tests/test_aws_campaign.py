"""The fault campaign on AWS: 200 operations through the Python API while a fault proxy between boto3 and
moto delays, drops, throttles, fails, loses answers and resets connections (runvoy_core/testing/campaign.py).

``benchmarks/fault_campaign.py --provider aws --runs 2000 --seed N`` runs a longer one through this test."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_test_tools import _Raw, config_dict
from botocore.awsrequest import AWSResponse

from runvoy_core.testing.campaign import CAMPAIGN_FAULTS, Campaign, campaign_settings, publish
from runvoy_core.testing.faultproxy import Chaos, FaultProxy, aws_dialect


def test_a_seeded_fault_campaign_leaves_nothing_running_stuck_duplicated_or_lost(
    moto: str, aws_simulator: Any
) -> None:
    from runvoy_core.api import Runvoy

    settings = campaign_settings()
    print(f"fault campaign on aws, seed {settings['seed']}")
    setup = Runvoy(provider="aws", **config_dict(moto))
    setup.provider.setup(dry_run=False)
    setup.close()
    chaos = Chaos(settings["seed"], CAMPAIGN_FAULTS)
    # a RunTask retried after a lost answer is deduplicated by ECS through its clientToken (moto does not)
    aws_simulator.honour_client_token = True
    with FaultProxy(moto, chaos, name="moto", dialect=aws_dialect) as proxy:

        def make_client() -> Runvoy:
            # one attempt per SDK call, short timeouts: every fault reaches runvoy's own handling, fast
            client = Runvoy(
                provider="aws",
                **config_dict(proxy.url, max_attempts=1, read_timeout=5.0, connect_timeout=2.0),
            )
            client.provider.compute.start_retry_delay = 0.01
            return client

        report = Campaign(make_client, chaos, aws_simulator.sim, **settings).run()
    publish(report, "aws")
    assert report.ok, report.format()


def _failing_starting_updates(rv: Any, times: int | None) -> list[int]:
    """The next ``times`` (all, when None) DynamoDB writes of a record's STARTING status answer 500."""
    failed = [0]

    def fail_starting_update(request: Any, **_: Any) -> Any:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        if (
            (times is not None and failed[0] >= times)
            or "version = :seen" not in body
            or "STARTING" not in body
        ):
            return None
        failed[0] += 1
        answer = json.dumps({"__type": "InternalServerError", "message": "injected"}).encode()
        return AWSResponse(request.url, 500, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(answer))

    rv.provider.clients.register("before-send.dynamodb.PutItem", fail_starting_update)
    return failed


def test_a_record_write_that_fails_once_after_the_start_is_retried(moto: str, sim: Any) -> None:
    """Campaign finding 1: RunTask succeeded, the record's STARTING update failed once. It is written again;
    the run goes on, watched."""
    from runvoy_core.api import Runvoy
    from runvoy_core.models import Status

    rv = Runvoy(provider="aws", **config_dict(moto, max_attempts=1))
    rv.provider.setup(dry_run=False)
    failed = _failing_starting_updates(rv, 1)
    try:
        ex = rv.submit("echo started; exit 4")
        assert failed[0] == 1
        assert ex.task_ref is not None and ex.status is Status.STARTING
        assert rv.wait(ex.id, timeout=60).exit_code == 4
    finally:
        rv.close()


def test_a_task_whose_record_cannot_be_written_is_stopped_not_left_unwatched(moto: str, sim: Any) -> None:
    """Campaign finding 1: the store keeps failing after RunTask succeeded: the task is stopped, and the record
    (once the store answers again) says so — never FAILED "failed to start" while the task runs on."""
    from runvoy_core.api import Runvoy
    from runvoy_core.errors import TaskUnrecorded

    rv = Runvoy(provider="aws", **config_dict(moto, max_attempts=1))
    rv.provider.setup(dry_run=False)
    failed = _failing_starting_updates(rv, None)
    try:
        with pytest.raises(TaskUnrecorded, match="the task was stopped"):
            rv.submit("echo started; sleep 300", stop_grace="1s")
        assert failed[0] >= 2
        [record] = rv.list(refresh=False)
        assert record.status.is_terminal and "the task was stopped" in (record.reason or "")
        task = sim.task_for(sim.launched[0])
        assert task is not None and task.wait(60) is not None, "the task was stopped"
    finally:
        rv.close()


def test_the_simulator_models_ecs_client_token_deduplication_when_asked(provider: Any, sim: Any) -> None:
    """The campaign's model of ECS: a RunTask repeated with its clientToken returns the first task (moto
    alone starts a second one, which the focused start tests rely on)."""
    from runvoy_core.ports import TaskSpec

    sent: list[dict[str, Any]] = []
    provider.clients.register(
        "provide-client-params.ecs.RunTask", lambda params, **_: sent.append(dict(params))
    )
    sim.honour_client_token = True
    spec = TaskSpec(execution_id="0c0c0c0c0c0c", argv=["/bin/sh", "-c", "true"], stop_grace=1.0)
    first = provider.compute.start(spec, "0c0c0c0c0c0c")
    assert sent and sent[0]["clientToken"] == "0c0c0c0c0c0c"
    again = provider.clients.client("ecs", single_attempt=True).run_task(**sent[0])
    assert [t["taskArn"] for t in again["tasks"]] == [first]
    assert len(sim.launched) == 1
