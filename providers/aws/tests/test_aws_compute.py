"""ECS Fargate compute against moto + the simulator: start, describe, stop, task definitions, look-ups."""

from __future__ import annotations

import time

import pytest
from aws_test_tools import CallCounter, wait_ended, wait_running

from runvoy_core.errors import UsageError
from runvoy_core.models import ExecutionRequest, Resources
from runvoy_core.ports import TaskPhase, TaskSpec
from runvoy_core.testing.waiting import DEADLINE, wait_for


def spec(execution_id: str, command: str, **kwargs: object) -> TaskSpec:
    return TaskSpec(execution_id=execution_id, argv=["/bin/sh", "-c", command], **kwargs)  # type: ignore[arg-type]


def test_a_task_runs_and_reports_its_exit_code_and_times(provider, sim) -> None:
    ref = provider.compute.start(spec("e1e1e1e1e1e1", "echo hi; exit 3", env={"X": "1"}), "e1e1e1e1e1e1")
    assert ref.startswith("arn:aws:ecs:us-east-1:")
    state = wait_ended(provider, ref)
    assert state.phase is TaskPhase.STOPPED
    assert state.exit_code == 3
    assert state.reason == "exited with code 3"
    assert state.execution_id == "e1e1e1e1e1e1"
    assert state.billed_start is not None and state.billed_stop is not None
    assert state.billed_start <= state.billed_stop
    assert state.detail["stop_code"] == "EssentialContainerExited"


def test_the_container_gets_the_command_environment_and_size(provider, sim) -> None:
    request_spec = spec(
        "e2e2e2e2e2e2",
        'echo "x=$X id=$RUNVOY_EXECUTION_ID"',
        env={"X": "42", "RUNVOY_EXECUTION_ID": "e2e2e2e2e2e2"},
        resources=Resources.model_validate(dict(cpu="1", memory="4GiB")),
    )
    ref = provider.compute.start(request_spec, "e2e2e2e2e2e2")
    wait_ended(provider, ref)
    assert [e.message for e in provider.logs.read(ref).events] == ["x=42 id=e2e2e2e2e2e2"]
    ecs = provider.clients.client("ecs")
    task = ecs.describe_tasks(cluster="runvoy", tasks=[ref])["tasks"][0]
    assert task["overrides"]["cpu"] == "1024" and task["overrides"]["memory"] == "4096"
    assert task["startedBy"] == "e2e2e2e2e2e2"


def test_a_task_definition_is_registered_once_per_content_and_reused(provider, sim) -> None:
    counter = CallCounter()
    counter.attach_provider(provider)
    a = provider.compute.start(spec("aaaaaaaaaaa1", "true"), "aaaaaaaaaaa1")
    b = provider.compute.start(spec("aaaaaaaaaaa2", "true", env={"Y": "2"}), "aaaaaaaaaaa2")
    assert counter.of("RegisterTaskDefinition") == 1
    assert counter.of("DescribeTaskDefinition") == 1  # the second run hit the in-process cache
    ecs = provider.clients.client("ecs")
    tasks = ecs.describe_tasks(cluster="runvoy", tasks=[a, b])["tasks"]
    assert len({t["taskDefinitionArn"] for t in tasks}) == 1

    # another process (a fresh provider) finds the same definition without registering a new revision
    from runvoy_aws.provider import create_provider

    other = create_provider(provider.config, None)
    counter2 = CallCounter()
    counter2.attach_provider(other)
    c = other.compute.start(spec("aaaaaaaaaaa3", "true"), "aaaaaaaaaaa3")
    assert counter2.of("RegisterTaskDefinition") == 0 and counter2.of("DescribeTaskDefinition") == 1
    assert (
        ecs.describe_tasks(cluster="runvoy", tasks=[c])["tasks"][0]["taskDefinitionArn"]
        == tasks[0]["taskDefinitionArn"]
    )
    # a different image is different content: a new family
    d = other.compute.start(spec("aaaaaaaaaaa4", "true", image="python:3.13-slim"), "aaaaaaaaaaa4")
    assert counter2.of("RegisterTaskDefinition") == 1
    taskdef = ecs.describe_tasks(cluster="runvoy", tasks=[d])["tasks"][0]["taskDefinitionArn"]
    assert taskdef != tasks[0]["taskDefinitionArn"] and taskdef.endswith(":1")
    other.close()


def test_arm64_and_spot_use_runtime_platform_and_fargate_spot(provider, sim) -> None:
    resources = Resources.model_validate(dict(architecture="arm64", spot=True))
    ref = provider.compute.start(spec("bbbbbbbbbbb1", "true", resources=resources), "bbbbbbbbbbb1")
    ecs = provider.clients.client("ecs")
    task = ecs.describe_tasks(cluster="runvoy", tasks=[ref])["tasks"][0]
    assert task["capacityProviderName"] == "FARGATE_SPOT"
    taskdef = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
    assert taskdef["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    container = taskdef["containerDefinitions"][0]
    assert container["logConfiguration"]["options"]["awslogs-stream-prefix"] == "runvoy"
    assert taskdef["executionRoleArn"].endswith(":role/runvoy-task-execution")


@pytest.mark.parametrize(
    ("cpu", "memory", "needle"),
    [
        ("0.25", "4GiB", "valid: 0.25 vCPU: 512MiB/1GiB/2GiB"),
        ("3", "8GiB", "0.25, 0.5, 1, 2, 4, 8 or 16"),
        ("4", "9.5GiB", ""),
    ],
)
def test_invalid_fargate_sizes_fail_before_any_call(provider, cpu: str, memory: str, needle: str) -> None:
    counter = CallCounter()
    counter.attach_provider(provider)
    request = ExecutionRequest(
        command="true", resources=Resources.model_validate(dict(cpu=cpu, memory=memory))
    )
    with pytest.raises(UsageError) as caught:
        provider.compute.validate(request)
    assert needle in caught.value.message
    assert "valid Fargate sizes" in caught.value.hint
    with pytest.raises(UsageError):
        provider.compute.start(spec("ccccccccccc1", "true", resources=request.resources), "ccccccccccc1")
    assert counter.total == 0


def test_a_run_in_another_region_is_refused_before_any_call(provider) -> None:
    with pytest.raises(UsageError, match="set up for us-east-1"):
        provider.compute.validate(ExecutionRequest(command="true", region="eu-west-1"))
    provider.compute.validate(ExecutionRequest(command="true", region="us-east-1"))


def test_overrides_over_the_ecs_limit_are_refused(provider) -> None:
    with pytest.raises(UsageError, match="8192"):
        provider.compute.start(spec("ddddddddddd1", "echo " + "x" * 9000), "ddddddddddd1")


def test_start_is_idempotent_and_find_locates_the_task(provider, sim) -> None:
    first = provider.compute.start(spec("fffffffffff1", "sleep 300"), "fffffffffff1")
    again = provider.compute.start(spec("fffffffffff1", "sleep 300"), "fffffffffff1")
    assert first == again
    assert provider.compute.find("fffffffffff1") == first
    assert provider.compute.find("000000000000") is None
    assert len(sim.launched) == 1


def test_stop_sends_sigterm_and_the_task_ends_as_stopped_by_request(provider, sim) -> None:
    command = "trap 'echo got TERM; exit 143' TERM; echo ready; while true; do sleep 0.05; done"
    ref = provider.compute.start(spec("ggggggggggg1", command, stop_grace=5.0), "ggggggggggg1")
    assert wait_running(provider, ref).phase is TaskPhase.RUNNING
    wait_for(lambda: provider.logs.read(ref).events, what="'ready': the TERM trap is set")
    provider.compute.stop(ref, 5.0)
    stopping = provider.compute.describe(ref)
    assert stopping.phase in (TaskPhase.STOPPING, TaskPhase.STOPPED)
    state = wait_ended(provider, ref)
    assert state.stopped_by_request and state.exit_code == 143
    assert "stopped by request" in (state.reason or "")
    messages = [e.message for e in provider.logs.read(ref).events]
    # the shell may also report its killed `sleep` ("Terminated", on stderr): awslogs merges the streams, and
    # the order of lines from two pipes is not fixed, so only "got TERM" after "ready" is certain
    assert messages[0] == "ready" and "got TERM" in messages[1:], messages
    provider.compute.stop(ref, 5.0)  # idempotent on a stopped task


def test_the_stop_timeout_escalates_to_sigkill(provider, sim) -> None:
    # the container ignores SIGTERM: ECS SIGKILLs it after the task definition's stopTimeout (2 s here)
    command = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
    ref = provider.compute.start(spec("hhhhhhhhhhh1", command, stop_grace=2.0), "hhhhhhhhhhh1")
    wait_running(provider, ref)
    wait_for(lambda: provider.logs.read(ref).events, what="'ready': the TERM trap is set")
    started = time.monotonic()
    provider.compute.stop(ref, 2.0, force=True)
    state = wait_ended(provider, ref)
    assert state.stopped_by_request and state.exit_code == 137
    # only the lower bound is timing: the upper one just says the SIGKILL came (the command never ends)
    assert 1.5 < time.monotonic() - started < DEADLINE


def test_list_active_returns_runvoy_tasks_with_their_execution_id(provider, sim) -> None:
    running = provider.compute.start(spec("iiiiiiiiiii1", "sleep 300"), "iiiiiiiiiii1")
    done = provider.compute.start(spec("iiiiiiiiiii2", "true"), "iiiiiiiiiii2")
    wait_ended(provider, done)
    active = provider.compute.list_active()
    assert [(s.ref, s.execution_id) for s in active] == [(running, "iiiiiiiiiii1")]
    provider.compute.stop(running, 1.0)
    wait_ended(provider, running)
    assert provider.compute.list_active() == []


def test_an_unknown_task_is_reported_unknown(provider) -> None:
    state = provider.compute.describe("arn:aws:ecs:us-east-1:123456789012:task/runvoy/0000aaaa")
    assert state.phase is TaskPhase.UNKNOWN and "no longer knows" in (state.reason or "")


def test_the_workdir_goes_into_the_task_definition(provider, sim) -> None:
    ref = provider.compute.start(spec("jjjjjjjjjjj1", "true", workdir="/srv/app"), "jjjjjjjjjjj1")
    ecs = provider.clients.client("ecs")
    taskdef_arn = ecs.describe_tasks(cluster="runvoy", tasks=[ref])["tasks"][0]["taskDefinitionArn"]
    container = ecs.describe_task_definition(taskDefinition=taskdef_arn)["taskDefinition"][
        "containerDefinitions"
    ][0]
    assert container["workingDirectory"] == "/srv/app"


def test_a_refused_start_names_what_to_check(provider) -> None:
    from runvoy_aws.provider import create_provider

    from runvoy_core.errors import ProviderError, TransientProviderError

    elsewhere = create_provider(provider.config.model_copy(update={"cluster": "not-set-up"}), None)
    with pytest.raises(ProviderError) as caught:
        elsewhere.compute.start(spec("kkkkkkkkkkk1", "true"), "kkkkkkkkkkk1")
    assert not isinstance(caught.value, TransientProviderError)
    assert "ClusterNotFoundException" in caught.value.message
    assert "runvoy setup --provider aws" in caught.value.hint
    elsewhere.close()
