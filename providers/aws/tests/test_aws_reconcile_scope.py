"""reconcile on ECS (moto + the simulator): a dry run changes nothing, and two configs (two executions tables)
sharing one cluster never stop each other's tasks (decisions 0015, 0016)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_snapshot import cloud_snapshot
from aws_test_tools import config_dict, wait_running
from runvoy_aws.compute import STORE_TAG

from runvoy_core.models import Status
from runvoy_core.ports import TaskSpec
from runvoy_core.reconcile import OTHER_STORE, UNTAGGED
from runvoy_core.testing.snapshot import local_snapshot
from runvoy_core.testing.waiting import DEADLINE, wait_for_status


def _client(moto: str, **overrides: Any) -> Any:
    from runvoy_core.api import Runvoy

    client = Runvoy(provider="aws", **config_dict(moto, **overrides))
    client.provider.compute.start_retry_delay = 0.01
    client.provider.setup(dry_run=False)
    return client


@pytest.fixture
def clients(moto: str, sim: Any) -> Any:
    made: list[Any] = []

    def make(**overrides: Any) -> Any:
        made.append(_client(moto, **overrides))
        return made[-1]

    yield make
    for client in made:
        client.close()


def _sleeper(execution_id: str) -> TaskSpec:
    return TaskSpec(execution_id=execution_id, argv=["/bin/sh", "-c", "sleep 60"], stop_grace=1.0)


def test_a_dry_run_changes_nothing_and_says_what_a_real_run_would_do(
    clients: Any, sim: Any, moto: str, runvoy_home: Path
) -> None:
    rv = clients()
    orphan = rv.provider.compute.start(_sleeper("0ff0ff0ff0ff"), "0ff0ff0ff0ff")
    wait_running(rv.provider, orphan)
    stuck = rv.submit("echo quick", lock="nightly")
    assert sim.task_for(rv.get(stuck.id).task_ref).wait(DEADLINE) is not None  # ended; nobody watched it
    before = cloud_snapshot(rv.provider)
    home_before = local_snapshot(runvoy_home)  # no local file written either

    actions = rv.reconcile(dry_run=True)
    assert {s["action"] for s in rv.provider.setup(dry_run=True)} == {"exists"}
    _plan_a_second_store(moto)

    assert cloud_snapshot(rv.provider) == before
    assert local_snapshot(runvoy_home) == home_before
    by_id = {a.get("execution"): a for a in actions}
    assert by_id[stuck.id]["action"] == "would finalize" and by_id[stuck.id]["to"] == "SUCCEEDED", actions
    assert by_id["0ff0ff0ff0ff"]["action"] == "would stop orphan task", actions

    done = {a.get("execution"): a["action"] for a in rv.reconcile()}
    assert done == {stuck.id: "repaired", "0ff0ff0ff0ff": "stopped orphan task"}
    assert cloud_snapshot(rv.provider) != before
    assert sim.task_for(orphan).wait(DEADLINE) is not None


def test_two_stores_on_one_cluster_never_stop_each_others_tasks(clients: Any) -> None:
    team_a = clients()
    team_b = clients(executions_table="team-b-executions", locks_table="team-b-locks")
    store_b = team_b.provider.compute.store_id
    assert team_a.provider.compute.store_id != store_b
    a, b = team_a.submit("sleep 60", stop_grace="1s"), team_b.submit("sleep 60", stop_grace="1s")
    wait_for_status(team_a, a.id, Status.RUNNING)
    wait_for_status(team_b, b.id, Status.RUNNING)

    seen_by_a = {x.get("execution"): x for x in team_a.reconcile()}
    seen_by_b = {x.get("execution"): x for x in team_b.reconcile()}

    assert seen_by_a[b.id]["action"] == OTHER_STORE and seen_by_a[b.id]["store"] == store_b, seen_by_a
    assert seen_by_b[a.id]["action"] == OTHER_STORE, seen_by_b
    assert team_a.status(a.id).status is Status.RUNNING
    assert team_b.status(b.id).status is Status.RUNNING
    for rv, ex in ((team_a, a), (team_b, b)):
        rv.kill(ex.id, force=True)
        assert rv.wait(ex.id, timeout=DEADLINE).status is Status.CANCELLED


def test_a_task_without_a_store_tag_is_left_alone(clients: Any) -> None:
    """A task started by a runvoy from before store tags: whose it is cannot be told, so nobody stops it."""
    rv = clients()
    compute = rv.provider.compute
    spec = _sleeper("01d01d01d01d")
    kwargs = compute._run_task_kwargs(
        spec, spec.execution_id, compute.taskdefs.ensure(compute._content(spec)), compute._overrides(spec)
    )
    kwargs["tags"] = [t for t in kwargs["tags"] if t["key"] != STORE_TAG]
    ref = rv.provider.clients.client("ecs").run_task(**kwargs)["tasks"][0]["taskArn"]
    wait_running(rv.provider, ref)
    actions = rv.reconcile()
    assert [(x["execution"], x["action"], x["store"]) for x in actions] == [("01d01d01d01d", UNTAGGED, None)]
    assert not rv.provider.compute.describe(ref).ended
    compute.stop(ref, 1.0, force=True)


def _plan_a_second_store(moto: str) -> None:
    """``setup --dry-run`` for another store on this cluster plans its tables, and creates nothing."""
    from runvoy_aws.config import AwsConfig
    from runvoy_aws.provider import create_provider

    section = config_dict(moto, executions_table="b-executions", locks_table="b-locks", bucket="b-archive")
    team_b = create_provider(AwsConfig.model_validate(section), None)
    try:
        planned = team_b.setup(dry_run=True)
        assert {s["resource"]: s["action"] for s in planned}["DynamoDB table b-executions"] == "would create"
        assert team_b.setup(dry_run=True) == planned  # still nothing there to find
    finally:
        team_b.close()
