"""Runs followed at once by one process share one poller (decision 0026): a round lists the job's executions
once for all of them instead of one GetExecution per run (counted on the Cloud Run fake)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.models import Execution, Status
from runvoy_core.testing.waiting import DEADLINE, wait_for

RUNS = 5
GET = "run.projects.locations.jobs.executions.get"
LIST = "run.projects.locations.jobs.executions.list"


@pytest.fixture
def rv(gcp_settings: dict[str, object], provider: Any) -> Any:
    from runvoy_core.api import Runvoy

    client = Runvoy(provider="gcp", **gcp_settings)
    client.runner  # noqa: B018 - made once, before the threads share it
    yield client
    client.close()


def test_followed_runs_share_one_list_of_executions_per_round(rv: Any, fake_run: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    poller = rv.runner.poller
    results: list[Execution] = []
    command = f"echo up; while [ ! -f {gate} ]; do sleep 0.2; done"
    threads = [
        threading.Thread(target=lambda: results.append(rv.run(command)), daemon=True) for _ in range(RUNS)
    ]
    for thread in threads:
        thread.start()
    wait_for(
        lambda: len(rv.list(statuses={Status.RUNNING}, refresh=False)) == RUNS, what=f"{RUNS} runs to run"
    )
    begin, rounds = time.monotonic(), poller.rounds
    wait_for(lambda: poller.rounds >= rounds + 3, what="three rounds with every run followed")
    end, done = time.monotonic(), poller.rounds
    gate.touch()
    for thread in threads:
        thread.join(DEADLINE)
    assert [r.status for r in results] == [Status.SUCCEEDED] * RUNS

    def within(method: str) -> int:
        project = str(rv.provider.clients.project)
        return sum(1 for c in fake_run.server.calls_to(method) if project in c.path and begin <= c.at <= end)

    assert within(GET) == 0
    assert 0 < within(LIST) <= done - rounds + 1
    assert poller.watching == 0
