"""Faults: throttling, 5xx, a timeout after RunTask succeeded, failed starts, OOM, spot interruption."""

from __future__ import annotations

import pytest
from aws_test_tools import inject_error, timeout_after_success, wait_ended, wait_running
from runvoy_aws.clients import READ_POLICY

from runvoy_core.errors import StartFailed, TransientProviderError
from runvoy_core.ports import TaskPhase, TaskSpec
from runvoy_core.ratelimit import RateLimits
from runvoy_core.testing.clock import ManualClock


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore still retries, but without its backoff sleeps and the adaptive mode's client-side rate
    limiting (which drops to 0.5 requests/s after a throttle): these tests are about what runvoy does
    around retries, not about botocore's timing."""
    import botocore.retries.adaptive
    import botocore.retries.standard

    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01
    )
    monkeypatch.setattr(
        botocore.retries.adaptive.ClientRateLimiter, "on_sending_request", lambda *a, **k: None
    )


def spec(execution_id: str, command: str, **kwargs: object) -> TaskSpec:
    return TaskSpec(execution_id=execution_id, argv=["/bin/sh", "-c", command], **kwargs)  # type: ignore[arg-type]


def task_count(provider, execution_id: str) -> int:
    ecs = provider.clients.client("ecs")
    return len(ecs.list_tasks(cluster="runvoy", startedBy=execution_id)["taskArns"])


def test_throttled_run_task_is_retried_without_a_duplicate(provider, sim) -> None:
    injected = inject_error(provider.clients.client("ecs", single_attempt=True), "RunTask", 2)
    ref = provider.compute.start(spec("a1a1a1a1a1a1", "exit 0"), "a1a1a1a1a1a1")
    assert injected[0] == 2
    assert wait_ended(provider, ref).exit_code == 0
    assert task_count(provider, "a1a1a1a1a1a1") == 1


def test_a_timeout_after_run_task_succeeded_finds_the_first_task(provider, sim) -> None:
    hits = timeout_after_success(provider.clients.client("ecs", single_attempt=True), "RunTask")
    ref = provider.compute.start(spec("b2b2b2b2b2b2", "echo once"), "b2b2b2b2b2b2")
    assert hits[0] == 1
    assert task_count(provider, "b2b2b2b2b2b2") == 1 and len(sim.launched) == 1
    assert ref == sim.launched[0]
    assert wait_ended(provider, ref).exit_code == 0


def test_server_errors_on_run_task_look_up_before_retrying(provider, sim) -> None:
    inject_error(
        provider.clients.client("ecs", single_attempt=True), "RunTask", 1, code="ServerException", status=500
    )
    ref = provider.compute.start(spec("c3c3c3c3c3c3", "true"), "c3c3c3c3c3c3")
    assert task_count(provider, "c3c3c3c3c3c3") == 1 and ref == sim.launched[0]


def test_throttled_describe_is_retried_by_botocore(provider, sim) -> None:
    ref = provider.compute.start(spec("d4d4d4d4d4d4", "exit 5"), "d4d4d4d4d4d4")
    injected = inject_error(provider.clients.client("ecs"), "DescribeTasks", 2)
    state = wait_ended(provider, ref)
    assert injected[0] == 2 and state.exit_code == 5


def test_persistent_throttling_on_describe_is_a_transient_error_not_a_crash(provider, sim) -> None:
    clock = ManualClock()
    provider.clients.limits = RateLimits(clock=clock)
    ref = provider.compute.start(spec("e5e5e5e5e5e5", "true"), "e5e5e5e5e5e5")
    # botocore's 3 attempts (max_attempts in the test config), 4 times: the core helper's attempts
    injected = inject_error(provider.clients.client("ecs"), "DescribeTasks", 3 * READ_POLICY.attempts)
    with pytest.raises(TransientProviderError, match="ThrottlingException"):
        provider.compute.describe(ref)
    assert injected[0] == 12 and len([s for s in clock.sleeps if s > 0]) <= 3
    assert wait_ended(provider, ref).phase is TaskPhase.STOPPED  # the next poll works


def test_throttled_log_reads_are_retried(provider, sim) -> None:
    ref = provider.compute.start(spec("f6f6f6f6f6f6", "echo a; echo b"), "f6f6f6f6f6f6")
    wait_ended(provider, ref)
    injected = inject_error(provider.clients.client("logs"), "GetLogEvents", 2)
    assert [e.message for e in provider.logs.read(ref).events] == ["a", "b"]
    assert injected[0] == 2
    provider.clients.limits = RateLimits(clock=ManualClock())
    inject_error(provider.clients.client("logs"), "GetLogEvents", 3 * READ_POLICY.attempts)
    with pytest.raises(TransientProviderError):
        provider.logs.read(ref)
    assert [e.message for e in provider.logs.read(ref).events] == ["a", "b"]


def test_a_task_that_fails_to_start(provider, sim) -> None:
    image = "registry.example/does-not-exist:1"
    ref = provider.compute.start(spec("a7a7a7a7a7a7", "true", image=image), "a7a7a7a7a7a7")
    state = wait_ended(provider, ref)
    assert state.failed_to_start and state.exit_code is None
    assert state.reason.startswith("the task failed to start: CannotPullContainerError")
    assert state.billed_start is None  # nothing was pulled: nothing is billed


def test_an_out_of_memory_kill(provider, sim) -> None:
    ref = provider.compute.start(spec("b8b8b8b8b8b8", "echo start; kill -9 $$"), "b8b8b8b8b8b8")
    state = wait_ended(provider, ref)
    assert state.exit_code == 137 and state.signal == 9
    assert state.reason.startswith("out of memory")
    assert not state.stopped_by_request


def test_a_spot_interruption(provider, sim) -> None:
    from runvoy_core.models import Resources

    command = "trap 'exit 0' TERM; while true; do sleep 0.05; done"
    ref = provider.compute.start(
        spec("c9c9c9c9c9c9", command, resources=Resources(spot=True)), "c9c9c9c9c9c9"
    )
    wait_running(provider, ref)
    sim.interrupt_spot(ref)
    state = wait_ended(provider, ref)
    assert state.reason.startswith("Fargate Spot interruption")
    assert state.exit_code is None  # exiting 0 on SIGTERM did not finish the work
    assert not state.stopped_by_request


def test_run_task_failures_are_a_start_failure(provider, sim) -> None:
    import json

    import botocore.awsrequest
    from aws_test_tools import _Raw

    client = provider.clients.client("ecs", single_attempt=True)

    def refuse(request, **_):
        body = json.dumps({"tasks": [], "failures": [{"reason": "Capacity is unavailable at this time"}]})
        return botocore.awsrequest.AWSResponse(
            request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body.encode())
        )

    client.meta.events.register("before-send.ecs.RunTask", refuse)
    with pytest.raises(StartFailed, match="Capacity is unavailable"):
        provider.compute.start(spec("d0d0d0d0d0d0", "true"), "d0d0d0d0d0d0")


def test_access_denied_is_a_clear_error(provider) -> None:
    from runvoy_core.errors import PermissionDenied

    inject_error(provider.clients.client("ecs"), "DescribeTasks", 1, code="AccessDeniedException")
    with pytest.raises(PermissionDenied) as caught:
        provider.compute.describe("arn:aws:ecs:us-east-1:123456789012:task/runvoy/abc")
    assert not isinstance(caught.value, TransientProviderError)
    # AWS's message here names no action: the service's IAM prefix and the operation make it
    assert "allow the IAM action ecs:DescribeTasks " in caught.value.hint
    assert "minimal-iam-policy" in caught.value.hint
    assert caught.value.to_dict()["permission"] == "ecs:DescribeTasks"
    assert caught.value.docs == "docs/errors.md#permissiondenied"


def test_access_denied_on_run_task_names_the_action_aws_names(provider, sim) -> None:
    from runvoy_core.errors import PermissionDenied

    inject_error(
        provider.clients.client("ecs", single_attempt=True),
        "RunTask",
        1,
        code="AccessDeniedException",
        message="User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecs:RunTask on "
        "resource: arn:aws:ecs:us-east-1:123456789012:task-definition/runvoy-x:1 because no "
        "identity-based policy allows the ecs:RunTask action",
    )
    with pytest.raises(PermissionDenied) as caught:
        provider.compute.start(spec("f6f6f6f6f6f6", "true"), "f6f6f6f6f6f6")
    assert "allow the IAM action ecs:RunTask " in caught.value.hint
    assert not sim.launched


def test_access_denied_on_the_records_table_names_the_dynamodb_action(provider) -> None:
    from runvoy_core.errors import PermissionDenied

    inject_error(provider.clients.client("dynamodb"), "GetItem", 1, code="AccessDeniedException")
    with pytest.raises(PermissionDenied) as caught:
        provider.store.get("abcdefabcdef")
    assert "allow the IAM action dynamodb:GetItem " in caught.value.hint


def test_expired_credentials_say_to_sign_in_again(provider) -> None:
    from runvoy_core.errors import NotAuthenticated

    inject_error(provider.clients.client("ecs"), "DescribeTasks", 1, code="ExpiredTokenException")
    with pytest.raises(NotAuthenticated) as caught:
        provider.compute.describe("arn:aws:ecs:us-east-1:123456789012:task/runvoy/abc")
    assert "aws sso login" in caught.value.hint


def test_a_missing_cluster_says_to_run_setup(provider) -> None:
    from runvoy_core.errors import ProviderError

    inject_error(
        provider.clients.client("ecs"),
        "DescribeTasks",
        1,
        code="ClusterNotFoundException",
        message="Cluster not found.",
    )
    with pytest.raises(ProviderError) as caught:
        provider.compute.describe("arn:aws:ecs:us-east-1:123456789012:task/runvoy/abc")
    assert "runvoy setup --provider aws" in caught.value.hint
    assert caught.value.docs == "docs/errors.md#providererror"
