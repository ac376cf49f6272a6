"""Faults: throttling and unavailability on run and get, a run whose answer is lost after the execution was
created, an execution cancelled from outside, a task killed by a signal."""

from __future__ import annotations

import threading

import pytest
from google.cloud import run_v2

from runvoy_core.errors import TransientProviderError
from runvoy_core.models import ExecutionRequest
from runvoy_core.ports import TaskPhase, TaskSpec
from runvoy_core.testing.waiting import DEADLINE, wait_for

RUN = "run.projects.locations.jobs.run"
GET_EXECUTION = "run.projects.locations.jobs.executions.get"


def spec_for(command: str, execution_id: str = "e1", **request: object) -> TaskSpec:
    req = ExecutionRequest(command=command, **request)  # type: ignore[arg-type]
    return TaskSpec.from_request(
        execution_id, req, env={"RUNVOY_EXECUTION_ID": execution_id}, request_id=None
    )


def executions_of(fake_run, project: str) -> list[str]:
    return [n for n in fake_run.executions if f"/{project}/" in n]


def wait_ended(provider, ref: str, timeout: float = DEADLINE):
    return wait_for(
        lambda: (s := provider.compute.describe(ref)).ended and s, what=f"{ref} to end", timeout=timeout
    )


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_run_is_retried_without_duplicate(provider, fake_run, project, status) -> None:
    provider.compute.ensure_job(
        provider.compute.location(None), provider.compute.job_content(spec_for("true"))
    )
    fake_run.server.faults.add(RUN, status=status, times=2)
    ref = provider.compute.start(spec_for("echo once"), "e1")
    assert executions_of(fake_run, project) == [ref]
    assert [c.status for c in fake_run.server.calls_to(RUN) if project in c.path] == [status, status, 200]
    assert wait_ended(provider, ref).exit_code == 0


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_get_does_not_crash_a_watch(provider, fake_run, status) -> None:
    ref = provider.compute.start(spec_for("true"), "e1")
    wait_ended(provider, ref)
    fake_run.server.faults.add(GET_EXECUTION, status=status, times=2)
    assert provider.compute.describe(ref).exit_code == 0
    fake_run.server.faults.add(GET_EXECUTION, status=status, times=100)
    with pytest.raises(TransientProviderError):  # the runner keeps watching after this
        provider.compute.describe(ref)


@pytest.mark.parametrize("template_shows_overrides", [True, False])
def test_run_that_timed_out_client_side_but_started_server_side(
    provider, fake_run, project, gcp_config, template_shows_overrides
) -> None:
    from runvoy_gcp.provider import create_provider

    fake_run.template_shows_overrides = template_shows_overrides
    # the answer comes 10 s after the 1 s timeout: the other calls still get a loaded machine's second
    impatient = create_provider(gcp_config.model_copy(update={"request_timeout": 1.0}), None)
    try:
        fake_run.server.faults.add(RUN, delay_after=10.0)
        ref = impatient.compute.start(spec_for("echo started"), "e1")
        assert executions_of(fake_run, project) == [ref]
        assert len([c for c in fake_run.server.calls_to(RUN) if project in c.path]) == 1
        assert wait_ended(provider, ref).exit_code == 0
        # the runner's own look-up after an ambiguous start finds the same execution
        assert impatient.compute.find("e1") == ref
    finally:
        impatient.close()


def test_ambiguous_run_with_another_execution_in_between_is_not_confused(provider, fake_run, project) -> None:
    """Someone else's execution of the same job appears; ours did not start: a new run is made, once."""
    other = provider.compute.start(spec_for("true", "other"), "other")
    fake_run.server.faults.add(RUN, status=503)
    ref = provider.compute.start(spec_for("true", "mine"), "mine")
    assert ref != other
    assert sorted(executions_of(fake_run, project)) == sorted([ref, other])
    assert provider.compute.find("mine") == ref


def test_execution_cancelled_from_outside(provider, fake_run) -> None:
    ref = provider.compute.start(spec_for("echo up; sleep 300"), "e1")
    wait_for(lambda: provider.compute.describe(ref).phase == TaskPhase.RUNNING, what=f"{ref} to run")
    other_client = run_v2.ExecutionsClient(
        transport="rest",
        credentials=provider.clients.credentials,
        client_options={"api_endpoint": fake_run.endpoint},
    )
    other_client.cancel_execution(name=ref)
    state = wait_ended(provider, ref)
    assert state.stopped_by_request
    assert state.phase == TaskPhase.STOPPED


def test_task_killed_by_signal(provider) -> None:
    ref = provider.compute.start(spec_for("echo before; kill -KILL $$"), "e1")
    state = wait_ended(provider, ref)
    assert state.signal == 9
    assert state.exit_code == 137
    assert "signal 9" in (state.reason or "")
    assert not state.stopped_by_request and not state.timed_out


def test_cancel_before_start_reports_cancelled_not_failed_to_start(provider, fake_run) -> None:
    fake_run.start_gate = threading.Event()  # never set: the task is cancelled before it starts
    ref = provider.compute.start(spec_for("true"), "e1")
    provider.compute.stop(ref, grace=0, force=True)
    state = wait_ended(provider, ref)
    assert state.stopped_by_request and not state.failed_to_start
    assert state.billed_stop is None


def test_throttled_logs_are_retried(provider, fake_run, fake_logging) -> None:
    ref = provider.compute.start(spec_for("echo line"), "e1")
    wait_ended(provider, ref)
    wait_for(lambda: provider.logs.read(ref).events, what="the line to reach Cloud Logging")
    fake_logging.server.faults.add("logging.entries.list", status=429, times=2)
    assert [e.message for e in provider.logs.read(ref).events] == ["line"]


def test_a_repeated_start_finds_the_execution_through_its_task(provider, fake_run, project) -> None:
    fake_run.template_shows_overrides = False
    spec = spec_for("sleep 300")
    ref = provider.compute.start(spec, "e1")
    assert provider.compute.start(spec, "e1") == ref
    assert provider.compute.find("e1") == ref
    assert [s.execution_id for s in provider.compute.list_active()] == ["e1"]
    assert executions_of(fake_run, project) == [ref]


def test_a_403_on_run_names_the_permission_and_the_role(provider, fake_run, project) -> None:
    from runvoy_core.errors import PermissionDenied

    provider.compute.ensure_job(
        provider.compute.location(None), provider.compute.job_content(spec_for("true"))
    )
    fake_run.server.faults.add(
        RUN,
        status=403,
        message="Permission 'run.jobs.run' denied on resource 'projects/p/locations/l/jobs/j' "
        "(or resource may not exist).",
    )
    with pytest.raises(PermissionDenied) as caught:
        provider.compute.start(spec_for("echo never"), "e403")
    assert "grant roles/run.developer on the project" in caught.value.hint
    assert "run.jobs.run" in caught.value.hint
    assert caught.value.to_dict()["permission"] == "run.jobs.run"
    assert executions_of(fake_run, project) == []


def test_a_403_without_a_named_permission_names_the_role_of_the_service(provider, fake_run) -> None:
    from runvoy_core.errors import PermissionDenied

    fake_run.server.faults.add(GET_EXECUTION, status=403, message="The caller does not have permission")
    with pytest.raises(PermissionDenied) as caught:
        provider.compute.describe(f"projects/{provider.clients.project}/locations/l/jobs/j/executions/x")
    assert "grant roles/run.developer on the project" in caught.value.hint


def test_a_disabled_api_says_which_to_enable(provider, fake_run) -> None:
    from runvoy_core.errors import PermissionDenied

    fake_run.server.faults.add(
        GET_EXECUTION,
        status=403,
        message="Cloud Run Admin API has not been used in project p before or it is disabled. "
        "Enable it by visiting https://console.developers.google.com/apis/api/run.googleapis.com then "
        "retry. SERVICE_DISABLED",
    )
    with pytest.raises(PermissionDenied) as caught:
        provider.compute.describe(f"projects/{provider.clients.project}/locations/l/jobs/j/executions/x")
    assert caught.value.hint == "enable it: gcloud services enable run.googleapis.com"


def test_a_401_says_to_sign_in(provider, fake_run) -> None:
    """The client refreshes its credentials on a 401; here (anonymous credentials) the refresh fails, as
    it does for a revoked or expired gcloud login."""
    from runvoy_core.errors import NotAuthenticated

    fake_run.server.faults.add(
        GET_EXECUTION, status=401, message="Request had invalid authentication credentials."
    )
    with pytest.raises(NotAuthenticated) as caught:
        provider.compute.describe(f"projects/{provider.clients.project}/locations/l/jobs/j/executions/x")
    assert "gcloud auth application-default login" in caught.value.hint


@pytest.mark.parametrize(
    ("message", "what", "permission", "role"),
    [
        (
            "x does not have storage.objects.get access to the Google Cloud Storage object.",
            "read gs://b/o",
            "storage.objects.get",
            "roles/storage.objectAdmin on the bucket",
        ),
        (
            "Permission 'iam.serviceAccounts.actAs' denied on service account jobs@p.iam.gserviceaccount.com",
            "create Cloud Run job j",
            "iam.serviceAccounts.actAs",
            "roles/iam.serviceAccountUser",
        ),
        ("The caller does not have permission", "read Cloud Logging", "logging.*", "roles/logging.viewer"),
        ("The caller does not have permission", "list GCS objects", "storage.*", "roles/storage.objectAdmin"),
        (
            "The caller does not have permission",
            "read Secret Manager",
            "secretmanager.*",
            "roles/secretmanager.viewer",
        ),
    ],
)
def test_each_refused_permission_maps_to_the_role_that_grants_it(message, what, permission, role) -> None:
    from google.api_core import exceptions as gexc
    from runvoy_gcp.calls import translate

    error = translate(gexc.PermissionDenied(message), what)
    assert error.details["permission"] == permission
    assert f"grant {role}" in error.hint
