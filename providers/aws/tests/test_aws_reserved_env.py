"""RUNVOY_* is runvoy's: a secret whose variable would be RUNVOY_FENCE is refused before any task, and the task
sees the fence the runner gave it (decision 0208)."""

from __future__ import annotations

import pytest
from aws_test_tools import wait_ended

from runvoy_core.errors import UsageError
from runvoy_core.ports import TaskSpec

RUNNER_ENV = {"RUNVOY_EXECUTION_ID": "dddd00000001", "RUNVOY_LOCK": "db", "RUNVOY_FENCE": "7"}


def test_a_secret_named_like_runvoys_variables_is_refused_before_any_task(provider, sim) -> None:
    provider.clients.client("ssm").put_parameter(Name="/prod/runvoy_fence", Value="666", Type="SecureString")
    spec = TaskSpec(
        execution_id="dddd00000001",
        argv=["/bin/sh", "-c", 'echo "fence=$RUNVOY_FENCE"'],
        env=RUNNER_ENV,
        secrets=["/prod/runvoy_fence"],
    )
    with pytest.raises(UsageError, match="RUNVOY_"):
        provider.compute.start(spec, spec.execution_id)
    assert sim.launched == []


def test_the_task_sees_the_runners_fence_next_to_its_secrets(provider, sim) -> None:
    provider.clients.client("ssm").put_parameter(Name="/prod/db-password", Value="x", Type="SecureString")
    spec = TaskSpec(
        execution_id="dddd00000002",
        argv=["/bin/sh", "-c", 'echo "fence=$RUNVOY_FENCE lock=$RUNVOY_LOCK"'],
        env={**RUNNER_ENV, "RUNVOY_EXECUTION_ID": "dddd00000002"},
        secrets=["/prod/db-password"],
    )
    ref = provider.compute.start(spec, spec.execution_id)
    assert wait_ended(provider, ref).exit_code == 0
    assert [e.message for e in provider.logs.read(ref).events] == ["fence=7 lock=db"]
