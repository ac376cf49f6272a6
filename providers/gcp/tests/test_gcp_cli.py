"""End to end through the CLI (click's CliRunner, in-process): every byte goes through the Google clients to
the fake Cloud Run (which really runs the command), the fake Cloud Logging and fake-gcs-server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from runvoy_core.testing.waiting import wait_for


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def gcp_env(gcp_settings, monkeypatch: pytest.MonkeyPatch, provider) -> None:
    """The [providers.gcp] section as RUNVOY_PROVIDERS__GCP__* variables; the provider fixture made the bucket."""
    for key, value in gcp_settings.items():
        monkeypatch.setenv(
            f"RUNVOY_PROVIDERS__GCP__{key.upper()}",
            # a table or a list is JSON in a RUNVOY_* variable (docs/configuration.md)
            json.dumps(value)
            if isinstance(value, dict | list)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value),
        )
    monkeypatch.setenv("RUNVOY_PROVIDER", "gcp")
    monkeypatch.setenv("RUNVOY_POLL_INTERVAL_MAX", "0.2")


@pytest.fixture
def invoke(gcp_env) -> Callable[..., Outcome]:
    from runvoy_cli.main import cli

    def run(*args: str) -> Outcome:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=True, prog_name="runvoy")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return run


def test_run_prints_hi_and_exits_3(invoke) -> None:
    result = invoke("--provider", "gcp", "run", "echo hi; exit 3")
    assert result.code == 3, result.err
    assert result.out == "hi\n"
    assert "FAILED (exit 3)" in result.err


def test_detach_status_logs_follow_and_kill(invoke, fake_run) -> None:
    detached = invoke("run", "--detach", "for i in 1 2 3; do echo tick-$i; sleep 0.1; done; sleep 300")
    assert detached.code == 0, detached.err
    execution_id = detached.out.strip()
    assert len(execution_id) == 12

    wait_for(lambda: "tick-3" in invoke("logs", execution_id).out, what="tick-3 in the logs", interval=0.1)
    status = invoke("status", execution_id[:6], "--json")
    assert status.code == 0, status.err
    data = json.loads(status.out)
    assert data["status"] == "RUNNING" and data["provider"] == "gcp"
    assert data["task_ref"] in fake_run.executions

    killed = invoke("kill", execution_id)
    assert killed.code == 0, killed.err
    assert killed.out.startswith(f"{execution_id} CANCELLED")
    assert fake_run.executions[data["task_ref"]].get("cancelledCount") == 1

    followed = invoke("logs", "-f", execution_id)
    assert followed.code == 0, followed.err
    assert followed.out.splitlines() == ["tick-1", "tick-2", "tick-3"]


def test_logs_follow_streams_until_the_end(invoke) -> None:
    detached = invoke("run", "-d", "for i in $(seq 1 15); do echo line-$i; sleep 0.05; done; exit 4")
    execution_id = detached.out.strip()
    followed = invoke("logs", "--follow", execution_id)
    assert followed.out.splitlines() == [f"line-{i}" for i in range(1, 16)]
    waited = invoke("wait", execution_id, "--json")
    assert waited.code == 4
    assert json.loads(waited.out)["status"] == "FAILED"


def test_timeout_exits_124(invoke) -> None:
    # the deadline counts from the record's creation: 3 s leave a loaded machine time to print "started"
    result = invoke("run", "--timeout", "3s", "echo started; sleep 300")
    assert result.code == 124, result.err
    assert result.out == "started\n"
    assert "TIMED_OUT" in result.err


def test_cost_is_billed_from_the_execution_times(invoke) -> None:
    result = invoke("run", "--json", "--cpu", "2", "--memory", "1GiB", "sleep 0.5")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    cost = data["cost"]
    assert cost["provider"] == "gcp" and float(cost["total"]) > 0
    billed = float(cost["billed_seconds"])
    assert 0.5 <= billed < 60  # a loaded machine stretches the run: only the lower bound is exact
    # Cloud Run jobs, tier 1: 0.000018 per vCPU-second, 0.000002 per GiB-second, per 100 ms
    assert float(cost["total"]) == pytest.approx(billed * (2 * 0.000018 + 1 * 0.000002), rel=0.05)
    report = invoke("cost", "report")
    assert report.code == 0, report.err


def test_invalid_size_is_a_usage_error_before_any_call(invoke, fake_run) -> None:
    before = len(fake_run.server.calls)
    result = invoke("run", "--cpu", "3", "true")
    assert result.code == 125  # a request that can never run (decision 0004), not a parser error
    assert "1 vCPU: 512MiB-4GiB" in result.err and "Traceback" not in result.err
    assert len(fake_run.server.calls) == before


def test_locks_are_held_in_gcs(invoke, provider) -> None:
    holder = invoke("run", "-d", "--lock", "nightly", "sleep 300")
    assert holder.code == 0, holder.err
    execution_id = holder.out.strip()
    try:
        blocked = invoke("run", "--lock", "nightly", "echo never")
        assert blocked.code == 75, blocked.err
        assert execution_id in blocked.err
        listed = invoke("locks", "list", "--json")
        assert listed.code == 0, listed.err
        assert [entry["name"] for entry in json.loads(listed.out)].count("nightly") == 1
        stored = provider.locks.read("nightly")
        assert stored is not None and stored.value["holder"]["execution_id"] == execution_id
    finally:
        invoke("kill", execution_id)
    status = invoke("locks", "status", "nightly", "--json")
    assert status.code == 0, status.err
    assert json.loads(status.out)["state"] == "released"


def test_setup_dry_run_and_create(invoke, gcp_settings, monkeypatch) -> None:
    monkeypatch.setenv("RUNVOY_PROVIDERS__GCP__BUCKET", f"new-{gcp_settings['project']}")
    dry = invoke("setup", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    rows = {row["resource"]: row for row in json.loads(dry.out)}
    bucket = f"gs://new-{gcp_settings['project']}"
    assert rows[bucket]["action"] == "would create"
    assert rows["run.googleapis.com"]["action"] == "exists"
    done = invoke("setup", "--json")
    assert {row["resource"]: row for row in json.loads(done.out)}[bucket]["action"] == "created"
    again = invoke("setup", "--json")
    assert {row["resource"]: row for row in json.loads(again.out)}[bucket]["action"] == "exists"


def test_reconcile_stops_a_runvoy_execution_without_a_record(invoke, provider, fake_run) -> None:
    from runvoy_core.models import ExecutionRequest
    from runvoy_core.ports import TaskSpec

    spec = TaskSpec.from_request(
        "abcdef012345", ExecutionRequest(command="sleep 300"), env={}, request_id=None
    )
    ref = provider.compute.start(spec, "abcdef012345")
    wait_for(provider.compute.list_active, what="the execution to be active")
    dry = invoke("reconcile", "--dry-run")
    assert dry.code == 0, dry.err
    assert "completionTime" not in fake_run.executions[ref]
    done = invoke("reconcile")
    assert done.code == 0, done.err
    wait_for(lambda: provider.compute.describe(ref).ended, what="reconcile to stop the orphaned execution")
    assert provider.compute.describe(ref).stopped_by_request


def test_setup_reports_a_disabled_api_and_an_unchecked_service_account(
    provider, fake_run, gcp_config
) -> None:
    from runvoy_gcp.provider import create_provider

    fake_run.server.faults.add(
        "run.projects.locations.jobs.list",
        status=403,
        message="Cloud Run Admin API has not been used in project p before or it is disabled. SERVICE_DISABLED",
    )
    with_account = create_provider(
        gcp_config.model_copy(update={"service_account": "jobs@p.iam.gserviceaccount.com"}), None
    )
    try:
        rows = {row["resource"]: row for row in with_account.setup(dry_run=True)}
    finally:
        with_account.close()
    assert rows["run.googleapis.com"]["action"] == "manual"
    assert "gcloud services enable run.googleapis.com" in rows["run.googleapis.com"]["detail"]
    assert rows["logging.googleapis.com"]["action"] == "exists"
    assert rows["jobs@p.iam.gserviceaccount.com"]["action"] == "manual"
    assert rows[f"gs://{provider.clients.bucket_name}"]["action"] == "exists"


def test_a_refused_run_prints_the_role_to_grant_and_the_docs_link(invoke, fake_run) -> None:
    fake_run.server.faults.add(
        "run.projects.locations.jobs.run",
        status=403,
        message="Permission 'run.jobs.run' denied on resource 'projects/p/locations/l/jobs/j'.",
    )
    result = invoke("--provider", "gcp", "run", "--json", "echo never")
    assert result.code == 125, result.err
    assert "Traceback" not in result.err
    hint = next(line for line in result.err.splitlines() if line.startswith("hint: "))
    assert "grant roles/run.developer on the project" in hint and "run.jobs.run" in hint
    assert "docs: docs/errors.md#permissiondenied" in result.err.splitlines()
    data = json.loads(result.out)
    assert data["error"] == "PermissionDenied" and data["permission"] == "run.jobs.run"
    assert data["docs"] == "docs/errors.md#permissiondenied" and "roles/run.developer" in data["hint"]
