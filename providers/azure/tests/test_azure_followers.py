"""Runs followed at once by one process share one poller (decision 0026). ARM lists container groups without
their instance view, so a round reads each due group: no fewer calls than before, but one round for all
runs, at the provider's cadence, and nothing for a run nobody follows (counted on the fake ARM)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from runvoy_core.models import Execution, Status
from runvoy_core.testing.waiting import DEADLINE, wait_for

RUNS = 4


def test_followed_runs_are_polled_by_the_shared_poller(rv: Any, fake_aci: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    rv.runner  # noqa: B018 - made once, before the threads share it
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
    group_rg = rv.provider.config.resource_group.lower()
    gets = [
        path
        for at, method, path in list(fake_aci.stamps)
        if method == "GET"
        and begin <= at <= end
        and f"/resourcegroups/{group_rg}/" in path.lower()
        and "/containergroups/runvoy-" in path.lower()
        and "/containers/" not in path.lower()
    ]
    # each round asks about each followed task at most once
    assert 0 < len(gets) <= RUNS * (done - rounds + 1)
    assert poller.watching == 0
