"""RUNVOY_* is runvoy's: a secret whose variable would be RUNVOY_FENCE is refused before any container group,
and the task sees the fence the runner gave it (decision 0208)."""

from __future__ import annotations

from typing import Any

import pytest
from runvoy_azure_testfakes.helpers import read_all, spec, wait_ended

from runvoy_core.errors import UsageError

RUNNER_ENV = {"RUNVOY_LOCK": "db", "RUNVOY_FENCE": "7"}


def test_a_secret_named_like_runvoys_variables_is_refused_before_any_group(
    make_provider: Any, fake_aci: Any
) -> None:
    provider = make_provider(secret_values={"runvoy-fence": "666"})
    task = spec("eeee00000001", 'echo "fence=$RUNVOY_FENCE"', env=RUNNER_ENV, secrets=["runvoy-fence"])
    with pytest.raises(UsageError, match="RUNVOY_"):
        provider.compute.start(task, "eeee00000001")
    assert provider.compute.find("eeee00000001") is None


def test_the_task_sees_the_runners_fence_next_to_its_secrets(make_provider: Any, fake_aci: Any) -> None:
    provider = make_provider(secret_values={"db-password": "x"})
    task = spec(
        "eeee00000002",
        'echo "fence=$RUNVOY_FENCE lock=$RUNVOY_LOCK"',
        env=RUNNER_ENV,
        secrets=["db-password"],
    )
    ref = provider.compute.start(task, "eeee00000002")
    assert wait_ended(provider, ref).exit_code == 0
    assert read_all(provider, ref) == ["fence=7 lock=db"]
