"""Cloud Run compute through google-cloud-run (REST) against the fake Cloud Run, which really runs the task."""

from __future__ import annotations

import hashlib
import threading

import pytest

from runvoy_core.errors import StartFailed, ValidationFailed
from runvoy_core.models import ExecutionRequest, Resources
from runvoy_core.ports import TaskPhase, TaskSpec, TaskState
from runvoy_core.testing.waiting import DEADLINE, wait_for


def spec_for(command: str, execution_id: str = "e1", **request: object) -> TaskSpec:
    req = ExecutionRequest(command=command, **request)  # type: ignore[arg-type]
    return TaskSpec.from_request(
        execution_id,
        req,
        env={"RUNVOY_EXECUTION_ID": execution_id, "RUNVOY_REQUEST_ID": "req-1"},
        request_id="req-1",
    )


def wait_ended(provider, ref: str, timeout: float = DEADLINE) -> TaskState:
    state: TaskState = wait_for(
        lambda: (s := provider.compute.describe(ref)).ended and s, what=f"{ref} to end", timeout=timeout
    )
    return state


def test_run_reports_exit_code_times_and_logs(provider, fake_run) -> None:
    ref = provider.compute.start(spec_for("echo hi; echo oops >&2; exit 3"), "e1")
    assert "/jobs/runvoy-" in ref and "/executions/" in ref
    state = wait_ended(provider, ref)
    assert state.phase == TaskPhase.STOPPED
    assert state.exit_code == 3 and state.signal is None
    assert not state.stopped_by_request and not state.timed_out and not state.failed_to_start
    assert state.execution_id == "e1"
    assert state.billed_start is not None and state.billed_stop is not None
    assert state.billed_stop >= state.billed_start
    page = provider.logs.read(ref)
    assert [(e.stream, e.message) for e in page.events] == [("stdout", "hi"), ("stderr", "oops")]


def test_job_is_created_once_per_content_with_run_once_settings(provider, fake_run, project) -> None:
    refs = [provider.compute.start(spec_for(f"exit {i}", f"e{i}"), f"e{i}") for i in range(3)]
    other = provider.compute.start(
        spec_for("true", "e9", resources=Resources.model_validate({"cpu": 2, "memory": "1GiB"})), "e9"
    )
    jobs = {name: job for name, job in fake_run.jobs.items() if f"/{project}/" in name}
    assert len(jobs) == 2
    assert {r.split("/executions/")[0] for r in refs} != {other.split("/executions/")[0]}
    assert len({r.split("/executions/")[0] for r in refs}) == 1
    job = jobs[refs[0].split("/executions/")[0]]
    task = job["template"]["template"]
    assert task["maxRetries"] == 0 or "maxRetries" not in task  # 0 is the proto default (omitted on the wire)
    assert job["labels"]["managed-by"] == "runvoy"
    assert task["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    assert [wait_ended(provider, r).exit_code for r in refs] == [0, 1, 2]
    creates = [c for c in fake_run.server.calls_to("run.projects.locations.jobs.create") if project in c.path]
    assert len(creates) == 2
    run_calls = [c for c in fake_run.server.calls_to("run.projects.locations.jobs.run") if project in c.path]
    body = run_calls[0].body["overrides"]
    assert body["taskCount"] == 1
    assert body["containerOverrides"][0]["args"] == ["-c", "exit 0"]


def test_max_retries_zero_is_sent(provider, fake_run, project) -> None:
    provider.compute.start(spec_for("true"), "e1")
    [create] = [
        c for c in fake_run.server.calls_to("run.projects.locations.jobs.create") if project in c.path
    ]
    # proto3 JSON omits zero values: "maxRetries" absent means 0, whereas Cloud Run's own default is 3
    assert create.body["template"]["template"].get("maxRetries", 0) == 0
    assert fake_run.tasks[next(n for n in fake_run.tasks if project in n)]["maxRetries"] == 0


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu": "0.5"}, "cpu 0.5 is not a Cloud Run jobs size"),
        ({"cpu": 3}, "cpu 3 is not"),
        ({"cpu": 1, "memory": "8GiB"}, "memory 8GiB is not valid with 1 vCPU"),
        ({"cpu": 4, "memory": "1GiB"}, "memory 1GiB is not valid with 4 vCPU"),
        ({"memory": "64GiB"}, "more than Cloud Run jobs offer"),
        ({"architecture": "arm64"}, "only x86_64"),
        ({"spot": True}, "no spot"),
    ],
)
def test_invalid_sizes_are_refused_before_any_call(provider, fake_run, resources, message) -> None:
    before = len(fake_run.server.calls)
    with pytest.raises(ValidationFailed) as err:
        provider.compute.validate(
            ExecutionRequest.model_validate({"command": "true", "resources": resources})
        )
    assert message in err.value.message
    if "cpu" in message or "memory" in message:
        assert "1 vCPU: 512MiB-4GiB" in err.value.message
    assert len(fake_run.server.calls) == before


def test_default_size_rounds_up_to_smallest_job_size(provider, fake_run, project) -> None:
    provider.compute.validate(ExecutionRequest(command="true"))  # 0.25 vCPU default: not refused
    provider.compute.start(spec_for("true"), "e1")
    job = next(j for n, j in fake_run.jobs.items() if project in n)
    assert job["template"]["template"]["containers"][0]["resources"]["limits"] == {
        "cpu": "1",
        "memory": "512Mi",
    }
    provider.compute.start(
        spec_for("true", "e2", resources=Resources.model_validate({"memory": "6GiB"})), "e2"
    )
    limits = [
        j["template"]["template"]["containers"][0]["resources"]["limits"]
        for n, j in fake_run.jobs.items()
        if project in n
    ]
    assert {"cpu": "2", "memory": "6144Mi"} in limits


def test_secrets_go_through_secret_key_ref_never_as_values(provider, fake_run, project) -> None:
    fake_run.put_secret(project, "db-password", "s3cret-value")
    digest = hashlib.sha256(b"s3cret-value").hexdigest()
    check = f'[ "$(printf %s "$DB_PASSWORD" | sha256sum | cut -d" " -f1)" = "{digest}" ] && echo match'
    spec = spec_for(check, secrets=["db-password"])
    ref = provider.compute.start(spec, "e1")
    assert wait_ended(provider, ref).exit_code == 0
    assert [e.message for e in provider.logs.read(ref).events] == ["match"]
    job = next(j for n, j in fake_run.jobs.items() if project in n)
    [env] = job["template"]["template"]["containers"][0]["env"]
    assert env == {
        "name": "DB_PASSWORD",
        "valueSource": {"secretKeyRef": {"secret": "db-password", "version": "latest"}},
    }
    for call in fake_run.server.calls:
        assert "s3cret-value" not in repr(call.body)


def test_secrets_are_part_of_the_job_content(provider, fake_run, project) -> None:
    fake_run.put_secret(project, "a", "1")
    fake_run.put_secret(project, "b", "2")
    provider.compute.start(spec_for("true", secrets=["a"]), "e1")
    provider.compute.start(spec_for("true", "e2", secrets=["a", "b"]), "e2")
    provider.compute.start(spec_for("true", "e3", secrets=["b", "a"]), "e3")
    assert len([n for n in fake_run.jobs if project in n]) == 2


def test_missing_secret_is_a_clear_start_failure(provider) -> None:
    with pytest.raises(StartFailed) as err:
        provider.compute.start(spec_for("true", secrets=["nope"]), "e1")
    assert "secret 'nope' does not exist" in err.value.message


def test_env_clashing_with_a_secret_is_refused(provider) -> None:
    with pytest.raises(ValidationFailed):
        provider.compute.validate(
            ExecutionRequest(command="true", env={"DB_PASSWORD": "x"}, secrets=["db-password"])
        )


def test_timeout_is_enforced_by_cloud_run(provider) -> None:
    spec = spec_for("echo start; sleep 300", timeout=1)
    ref = provider.compute.start(spec, "e1")
    state = wait_ended(provider, ref)
    assert state.timed_out
    assert state.exit_code != 0
    assert "timeout" in (state.reason or "")


def test_stop_cancels_the_execution(provider) -> None:
    ref = provider.compute.start(spec_for("echo up; sleep 300"), "e1")
    wait_for(lambda: provider.compute.describe(ref).phase == TaskPhase.RUNNING, what=f"{ref} to run")
    provider.compute.stop(ref, grace=10)
    state = wait_ended(provider, ref)
    assert state.stopped_by_request
    provider.compute.stop(ref, grace=10)  # idempotent on an ended execution


def test_find_and_list_active(provider, fake_run) -> None:
    running = provider.compute.start(spec_for("sleep 300", "run1"), "run1")
    done = provider.compute.start(spec_for("true", "done1"), "done1")
    wait_ended(provider, done)
    assert provider.compute.find("run1") == running
    assert provider.compute.find("done1") == done
    assert provider.compute.find("nobody") is None
    active = provider.compute.list_active()
    assert [(s.ref, s.execution_id) for s in active] == [(running, "run1")]
    assert active[0].phase in (TaskPhase.PENDING, TaskPhase.STARTING, TaskPhase.RUNNING)


def test_describe_of_a_deleted_execution_is_unknown(provider, fake_run) -> None:
    ref = provider.compute.start(spec_for("true"), "e1")
    wait_ended(provider, ref)
    provider.clients.executions.delete_execution(name=ref)
    assert provider.compute.describe(ref).phase == TaskPhase.UNKNOWN


def test_pending_before_start(provider, fake_run) -> None:
    fake_run.start_gate = threading.Event()
    ref = provider.compute.start(spec_for("true"), "e1")
    assert provider.compute.describe(ref).phase == TaskPhase.PENDING
    fake_run.start_gate.set()
    assert wait_ended(provider, ref).exit_code == 0


def test_a_secret_cloud_run_cannot_read_fails_to_start(provider, gcp_config) -> None:
    from runvoy_gcp.provider import create_provider

    unchecked = create_provider(gcp_config.model_copy(update={"check_secrets": False}), None)
    try:
        ref = unchecked.compute.start(spec_for("true", secrets=["missing"]), "e1")
        state = wait_ended(unchecked, ref)
        assert state.failed_to_start and state.exit_code is None
        assert "missing" in (state.reason or "")
        assert state.billed_start is None and state.billed_stop is None
    finally:
        unchecked.close()
