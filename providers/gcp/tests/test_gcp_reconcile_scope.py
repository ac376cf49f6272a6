"""reconcile on Cloud Run (the fakes + fake-gcs-server): a dry run changes nothing, and two configs (two
buckets) in one project and region never cancel each other's executions (decisions 0015, 0016)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runvoy_gcp_testfakes.snapshot import cloud_snapshot

from runvoy_core.models import ExecutionRequest, Status
from runvoy_core.ports import TaskPhase, TaskSpec
from runvoy_core.reconcile import OTHER_STORE, UNTAGGED
from runvoy_core.testing.snapshot import local_snapshot
from runvoy_core.testing.waiting import wait_for, wait_for_status


@pytest.fixture
def clients(gcp_settings: dict[str, object], provider: Any) -> Any:
    """Runvoy clients on the fakes; the provider fixture made the first bucket, others are made here."""
    from runvoy_core.api import Runvoy

    made: list[Any] = []

    def make(**overrides: Any) -> Any:
        client = Runvoy(provider="gcp", **{**gcp_settings, **overrides})
        if overrides.get("bucket"):
            client.provider.clients.storage.create_bucket(client.provider.clients.bucket_name)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _orphan(rv: Any, execution_id: str) -> str:
    spec = TaskSpec.from_request(execution_id, ExecutionRequest(command="sleep 60"), env={}, request_id=None)
    ref: str = rv.provider.compute.start(spec, execution_id)
    wait_for(lambda: rv.provider.compute.describe(ref).phase is TaskPhase.RUNNING, what=f"{ref} to run")
    return ref


def test_a_dry_run_changes_nothing_and_says_what_a_real_run_would_do(
    clients: Any, runvoy_home: Path, gcp_config: Any, project: str
) -> None:
    rv = clients()
    orphan = _orphan(rv, "0ff0ff0ff0ff")
    stuck = rv.submit("echo quick", lock="nightly")
    ref = rv.get(stuck.id).task_ref
    wait_for(lambda: rv.provider.compute.describe(ref).ended, what="the unwatched run to end")
    before = cloud_snapshot(rv.provider)
    home_before = local_snapshot(runvoy_home)  # no local file written either

    actions = rv.reconcile(dry_run=True)
    assert rv.provider.setup(dry_run=True)
    _plan_a_second_store(gcp_config, f"b3-{project}")

    assert cloud_snapshot(rv.provider) == before
    assert local_snapshot(runvoy_home) == home_before
    by_id = {a.get("execution"): a for a in actions}
    assert by_id[stuck.id]["action"] == "would finalize" and by_id[stuck.id]["to"] == "SUCCEEDED", actions
    assert by_id["0ff0ff0ff0ff"]["action"] == "would stop orphan task", actions

    done = {a.get("execution"): a["action"] for a in rv.reconcile()}
    assert done == {stuck.id: "repaired", "0ff0ff0ff0ff": "stopped orphan task"}
    wait_for(lambda: rv.provider.compute.describe(orphan).ended, what="the orphan to be cancelled")
    assert cloud_snapshot(rv.provider) != before


def test_two_stores_in_one_region_never_cancel_each_others_executions(clients: Any, project: str) -> None:
    team_a = clients()
    team_b = clients(bucket=f"b2-{project}")
    store_b = team_b.provider.compute.store_id
    assert team_a.provider.compute.store_id != store_b
    a, b = team_a.submit("sleep 60"), team_b.submit("sleep 60")
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
        assert rv.wait(ex.id, timeout=30).status is Status.CANCELLED


def test_the_cli_lists_another_stores_execution_as_left_alone(
    clients: Any, project: str, gcp_settings: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from runvoy_cli.main import cli

    team_b = clients(bucket=f"b2-{project}")
    b = team_b.submit("sleep 60")
    wait_for_status(team_b, b.id, Status.RUNNING)
    for key, value in gcp_settings.items():  # team a: the first bucket, through the CLI
        if isinstance(value, dict | list):
            continue  # tables of settings have no one-variable form; their defaults do here
        monkeypatch.setenv(
            f"RUNVOY_PROVIDERS__GCP__{key.upper()}", str(value).lower() if value is True else str(value)
        )
    for args in (["reconcile", "--json"], ["reconcile", "--dry-run", "--json"]):
        result = CliRunner().invoke(cli, ["--provider", "gcp", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        [entry] = json.loads(result.stdout)
        assert (entry["execution"], entry["action"]) == (b.id, OTHER_STORE)
        assert entry["store"] == team_b.provider.compute.store_id
    human = CliRunner().invoke(cli, ["--provider", "gcp", "reconcile"], catch_exceptions=False)
    assert OTHER_STORE in human.stdout and team_b.provider.compute.store_id in human.stdout
    assert team_b.status(b.id).status is Status.RUNNING
    team_b.kill(b.id, force=True)
    team_b.wait(b.id, timeout=30)


def test_an_execution_without_a_store_label_is_left_alone(clients: Any) -> None:
    """An execution of a job made by a runvoy from before store labels: whose it is cannot be told."""
    from google.cloud import run_v2
    from runvoy_gcp.compute import EXECUTION_ID_ENV, STORE_LABEL

    rv = clients()
    compute = rv.provider.compute
    spec = TaskSpec.from_request(
        "01d01d01d01d", ExecutionRequest(command="sleep 60"), env={}, request_id=None
    )
    content = compute.job_content(spec)
    del content["labels"][STORE_LABEL]
    job = compute.ensure_job(compute.location(None), content)
    overrides = compute._overrides(spec, {**spec.env, EXECUTION_ID_ENV: "01d01d01d01d"})
    ref = str(
        rv.provider.clients.jobs.run_job(
            request=run_v2.RunJobRequest(name=job, overrides=overrides)
        ).metadata.name
    )
    wait_for(lambda: compute.describe(ref).phase is TaskPhase.RUNNING, what=f"{ref} to run")
    actions = rv.reconcile()
    assert [(x["execution"], x["action"], x["store"]) for x in actions] == [("01d01d01d01d", UNTAGGED, None)]
    assert not compute.describe(ref).ended
    compute.stop(ref, 1.0, force=True)


def _plan_a_second_store(gcp_config: Any, bucket: str) -> None:
    """``setup --dry-run`` for another store in this region plans its bucket, and creates nothing."""
    from runvoy_gcp.provider import create_provider

    team_b = create_provider(gcp_config.model_copy(update={"bucket": bucket}), None)
    try:
        planned = team_b.setup(dry_run=True)
        assert {s["resource"]: s["action"] for s in planned}[f"gs://{bucket}"] == "would create"
        assert team_b.setup(dry_run=True) == planned  # still nothing there to find
    finally:
        team_b.close()
