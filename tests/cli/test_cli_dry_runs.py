"""Every --dry-run of the CLI changes nothing on disk, on the local provider: not the records, events, locks
or task rows in the home's databases, not the config file, not the price cache (decision 0015)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from runvoy_core.api import Runvoy
from runvoy_core.testing.snapshot import local_snapshot, wait_local_settled

COST_FIXTURES = Path(__file__).parents[1] / "cost" / "fixtures"


def test_every_dry_run_leaves_the_home_as_it_was(
    invoke: Callable[..., object], runvoy_home: Path, tmp_path: Path
) -> None:
    rv = Runvoy()
    stuck = rv.submit("exit 4", lock="nightly")  # its watcher is gone: reconcile has a record to finalize
    rv.provider.compute.wait(stuck.task_ref, 30)  # type: ignore[attr-defined]
    rv.close()
    wait_local_settled(runvoy_home)
    before = local_snapshot(tmp_path)
    for args in (
        ("reconcile", "--dry-run"),
        ("reconcile", "--dry-run", "--json"),
        ("setup", "--dry-run"),
        ("cost", "refresh", "--from-file", str(COST_FIXTURES / "azure_retail_eastus.json"), "--dry-run"),
    ):
        outcome = invoke(*args)
        assert outcome.code == 0, (args, outcome.err)  # type: ignore[attr-defined]
        assert local_snapshot(tmp_path) == before, args
    dry = invoke("reconcile", "--dry-run")
    assert "would finalize" in dry.out and "nothing was changed" in dry.err  # type: ignore[attr-defined]
