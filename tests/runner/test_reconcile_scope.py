"""reconcile on the local provider: a dry run changes nothing anywhere (records, events, locks, task rows,
files), and only tasks of this store are touched (decisions 0015, 0016)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from runvoy_core.api import Runvoy
from runvoy_core.models import Execution, ExecutionRequest, Status, utcnow
from runvoy_core.ports import TaskPhase, TaskSpec
from runvoy_core.providers.local import db
from runvoy_core.reconcile import UNTAGGED
from runvoy_core.testing.snapshot import local_snapshot, store_snapshot, wait_local_settled
from runvoy_core.testing.waiting import wait_for, wait_for_status


def _running(rv: Runvoy, ref: str) -> None:
    wait_for(lambda: rv.provider.compute.describe(ref).phase is TaskPhase.RUNNING, what=f"{ref} to run")


def _orphan(rv: Runvoy, execution_id: str) -> str:
    """A task without a record in rv's store (its submitter died before recording it, say)."""
    spec = TaskSpec(execution_id=execution_id, argv=["/bin/sh", "-c", "sleep 60"], stop_grace=1.0)
    ref = rv.provider.compute.start(spec, execution_id)
    _running(rv, ref)
    return ref


def _snapshot(rv: Runvoy, home: Path) -> dict[str, object]:
    return {"store": store_snapshot(rv.store, rv.register), "home": local_snapshot(home)}


def test_a_dry_run_changes_nothing_and_says_what_a_real_run_would_do(runvoy_home: Path) -> None:
    rv = Runvoy()
    stuck = rv.submit("exit 5", lock="nightly")  # ended with nobody watching: its record and lock are stale
    rv.provider.compute.wait(stuck.task_ref, 30)  # type: ignore[attr-defined]
    orphan = _orphan(rv, "0ff0ff0ff0ff")
    wait_local_settled(runvoy_home)
    before = _snapshot(rv, runvoy_home)

    actions = rv.reconcile(dry_run=True)

    assert _snapshot(rv, runvoy_home) == before
    by_id = {a.get("execution"): a for a in actions}
    assert by_id[stuck.id]["action"] == "would finalize" and by_id[stuck.id]["to"] == "FAILED", actions
    assert by_id["0ff0ff0ff0ff"]["action"] == "would stop orphan task", actions
    assert rv.provider.compute.describe(orphan).phase is TaskPhase.RUNNING

    # the same reconcile for real has all of that to do
    done = {a.get("execution"): a["action"] for a in rv.reconcile()}
    assert done == {stuck.id: "repaired", "0ff0ff0ff0ff": "stopped orphan task"}
    assert rv.get(stuck.id).status is Status.FAILED
    assert store_snapshot(rv.store, rv.register)["locks"] != before["store"]["locks"]  # type: ignore[index]
    wait_for(lambda: rv.provider.compute.describe(orphan).ended, what="the orphan to stop")


def test_a_record_that_never_got_a_task_would_be_marked_lost(runvoy_home: Path) -> None:
    rv = Runvoy()
    old = Execution(
        id="abandoned000",
        provider="local",
        request=ExecutionRequest(command="true"),
        status=Status.PENDING,
        created_at=utcnow() - timedelta(hours=1),
    )
    rv.store.create(old)
    before = _snapshot(rv, runvoy_home)
    actions = rv.reconcile(dry_run=True)
    assert _snapshot(rv, runvoy_home) == before
    assert [(a["execution"], a["action"], a["to"]) for a in actions] == [
        ("abandoned000", "would mark LOST", "LOST")
    ]


def test_local_tasks_carry_their_store_id(runvoy_home: Path) -> None:
    rv = Runvoy()
    ex = rv.submit("sleep 60")
    wait_for_status(rv, ex.id, Status.RUNNING)
    compute = rv.provider.compute
    [state] = compute.list_active()
    assert state.store_id == compute.store_id  # type: ignore[attr-defined]
    assert rv.reconcile() == []
    rv.kill(ex.id, force=True)
    rv.wait(ex.id, timeout=30)


def test_an_untagged_task_is_left_alone(runvoy_home: Path) -> None:
    """A task started before tasks carried their store: reconcile cannot tell whose it is, so it stays."""
    rv = Runvoy()
    ref = _orphan(rv, "01d01d01d01d")
    conn = sqlite3.connect(runvoy_home / db.STATE_DB)
    with conn:
        conn.execute("UPDATE tasks SET labels = '{}' WHERE id = ?", (ref,))
    conn.close()
    actions = rv.reconcile()
    assert [(a["execution"], a["action"]) for a in actions] == [("01d01d01d01d", UNTAGGED)]
    assert rv.provider.compute.describe(ref).phase is TaskPhase.RUNNING
    rv.provider.compute.stop(ref, 1.0, force=True)
    wait_for(lambda: rv.provider.compute.describe(ref).ended, what="the task to stop")


def test_two_homes_never_stop_each_others_tasks(
    runvoy_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team_a = Runvoy()
    other_home = tmp_path / "other-home"
    other_home.mkdir()
    monkeypatch.setenv("RUNVOY_HOME", str(other_home))
    team_b = Runvoy()
    a, b = team_a.submit("sleep 60"), team_b.submit("sleep 60")
    wait_for_status(team_a, a.id, Status.RUNNING)
    wait_for_status(team_b, b.id, Status.RUNNING)
    assert team_a.provider.compute.store_id != team_b.provider.compute.store_id  # type: ignore[attr-defined]
    # each home is its own store and task table: neither even sees the other's task
    assert team_a.reconcile() == [] and team_b.reconcile() == []
    assert team_a.status(a.id).status is Status.RUNNING
    assert team_b.status(b.id).status is Status.RUNNING
    for rv, ex in ((team_a, a), (team_b, b)):
        rv.kill(ex.id, force=True)
        rv.wait(ex.id, timeout=30)
