"""RUNVOY_* is runvoy's: a secret whose variable would be RUNVOY_FENCE is refused before any job, and the task
sees the fence the runner gave it (decision 0208)."""

from __future__ import annotations

import pytest

from runvoy_core.errors import UsageError
from runvoy_core.ports import TaskSpec, TaskState
from runvoy_core.testing.waiting import wait_for


def wait_ended(provider, ref: str) -> TaskState:
    state: TaskState = wait_for(
        lambda: (s := provider.compute.describe(ref)).ended and s, what=f"{ref} to end"
    )
    return state


RUNNER_ENV = {"RUNVOY_EXECUTION_ID": "e1", "RUNVOY_LOCK": "db", "RUNVOY_FENCE": "7"}


def test_a_secret_named_like_runvoys_variables_is_refused_before_any_job(provider, fake_run, project) -> None:
    fake_run.put_secret(project, "runvoy-fence", "666")
    spec = TaskSpec(
        execution_id="e1",
        argv=["/bin/sh", "-c", 'echo "fence=$RUNVOY_FENCE"'],
        env=RUNNER_ENV,
        secrets=["runvoy-fence"],
    )
    with pytest.raises(UsageError, match="RUNVOY_"):
        provider.compute.start(spec, "e1")
    assert [n for n in fake_run.jobs if project in n] == []


def test_the_task_sees_the_runners_fence_next_to_its_secrets(provider, fake_run, project) -> None:
    fake_run.put_secret(project, "db-password", "x")
    spec = TaskSpec(
        execution_id="e1",
        argv=["/bin/sh", "-c", 'echo "fence=$RUNVOY_FENCE lock=$RUNVOY_LOCK"'],
        env=RUNNER_ENV,
        secrets=["db-password"],
    )
    ref = provider.compute.start(spec, "e1")
    assert wait_ended(provider, ref).exit_code == 0
    assert [e.message for e in provider.logs.read(ref).events] == ["fence=7 lock=db"]
