"""reconcile on Azure: a dry run changes nothing (no group deleted or stopped, no entity or blob written), and
two configs sharing a resource group never touch each other's groups (decisions 0015, 0016)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from runvoy_azure.compute import TAG_STORE
from runvoy_azure_testfakes.helpers import spec, wait_ended, wait_for
from runvoy_azure_testfakes.snapshot import cloud_snapshot

from runvoy_core.models import Status
from runvoy_core.ports import TaskPhase
from runvoy_core.reconcile import OTHER_STORE, UNTAGGED
from runvoy_core.testing.snapshot import local_snapshot
from runvoy_core.testing.waiting import wait_for_status


def _running(provider: Any, ref: str) -> None:
    wait_for(provider, ref, lambda s: s.phase is TaskPhase.RUNNING)


def test_a_dry_run_deletes_no_ended_group_and_changes_nothing(
    make_client: Any, fake_aci: Any, monkeypatch: pytest.MonkeyPatch, runvoy_home: Path, new_section: Any
) -> None:
    import runvoy_azure.compute

    # every ended group counts as left over at once (in a real account: after ten minutes)
    monkeypatch.setattr(runvoy_azure.compute, "LEFTOVER_AFTER", timedelta(0))
    rv = make_client()
    provider = rv.provider
    leftover = provider.compute.start(spec("1eft0ver0000", "true"), "1eft0ver0000")
    wait_ended(provider, leftover)
    orphan = provider.compute.start(spec("0ff0ff0ff0ff", "sleep 60"), "0ff0ff0ff0ff")
    _running(provider, orphan)
    stuck = rv.submit("echo quick")
    wait_ended(provider, rv.get(stuck.id).task_ref)
    before = cloud_snapshot(provider)
    home_before = local_snapshot(runvoy_home)  # no local file written either

    actions = rv.reconcile(dry_run=True)
    assert {s["action"] for s in provider.setup(dry_run=True)} == {"exists"}
    _plan_a_second_store(new_section, provider.config.resource_group)

    assert cloud_snapshot(provider) == before
    assert local_snapshot(runvoy_home) == home_before
    by_id = {a.get("execution"): a for a in actions}
    assert by_id[stuck.id]["action"] == "would finalize" and by_id[stuck.id]["to"] == "SUCCEEDED", actions
    assert by_id["0ff0ff0ff0ff"]["action"] == "would stop orphan task", actions
    assert by_id["1eft0ver0000"]["action"] == "would clean up ended task", actions

    # for real, all of it is done
    done: dict[str | None, list[str]] = {}
    for action in rv.reconcile():
        done.setdefault(action.get("execution"), []).append(action["action"])
    assert done[stuck.id] == ["repaired"], done
    # the stopped orphan may end before the same pass sweeps ended groups, which then deletes it too
    assert done["0ff0ff0ff0ff"] in (
        ["stopped orphan task"],
        ["stopped orphan task", "cleaned up ended task"],
    ), done
    assert done["1eft0ver0000"] == ["cleaned up ended task"], done
    assert fake_aci.group("runvoy-1eft0ver0000") is None
    assert rv.get(stuck.id).status is Status.SUCCEEDED


def test_two_stores_on_one_resource_group_leave_each_others_groups_alone(
    make_client: Any, fake_aci: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runvoy_azure.compute

    monkeypatch.setattr(runvoy_azure.compute, "LEFTOVER_AFTER", timedelta(0))
    team_a = make_client()
    team_b = make_client(resource_group=team_a.provider.config.resource_group)
    store_b = team_b.provider.compute.store_id
    assert team_a.provider.compute.store_id != store_b
    a, b = team_a.submit("sleep 60"), team_b.submit("sleep 60")
    wait_for_status(team_a, a.id, Status.RUNNING)
    wait_for_status(team_b, b.id, Status.RUNNING)
    # an ended group of team b's that its watcher did not clean up: not team a's to delete
    ended_b = team_b.provider.compute.start(spec("bbbbbbbbbbbb", "true"), "bbbbbbbbbbbb")
    wait_ended(team_b.provider, ended_b)

    seen_by_a = {x.get("execution"): x for x in team_a.reconcile()}
    seen_by_b = {x.get("execution"): x for x in team_b.reconcile(dry_run=True)}

    assert seen_by_a[b.id]["action"] == OTHER_STORE and seen_by_a[b.id]["store"] == store_b
    assert "bbbbbbbbbbbb" not in seen_by_a
    assert seen_by_b[a.id]["action"] == OTHER_STORE
    assert fake_aci.group(f"runvoy-{b.id}") is not None and not fake_aci.group(f"runvoy-{b.id}").ended
    assert fake_aci.group("runvoy-bbbbbbbbbbbb") is not None
    assert team_b.status(b.id).status is Status.RUNNING and team_a.status(a.id).status is Status.RUNNING
    for rv, ex in ((team_a, a), (team_b, b)):
        rv.kill(ex.id, force=True)
        rv.wait(ex.id, timeout=30)


def test_a_group_without_a_store_tag_is_left_alone(make_client: Any, fake_aci: Any) -> None:
    """A group started by a runvoy from before store tags: whose it is cannot be told, so nobody stops it."""
    rv = make_client()
    compute, config = rv.provider.compute, rv.provider.config
    body = compute._group_body(spec("01d01d01d01d", "sleep 60"), "01d01d01d01d")
    del body.tags[TAG_STORE]
    rv.provider.clients.aci.container_groups.begin_create_or_update(
        config.resource_group, "runvoy-01d01d01d01d", body, polling=False
    )
    ref = f"{config.resource_group}/runvoy-01d01d01d01d"
    _running(rv.provider, ref)
    actions = rv.reconcile()
    assert [(x["execution"], x["action"], x["store"]) for x in actions] == [("01d01d01d01d", UNTAGGED, None)]
    assert not fake_aci.group("runvoy-01d01d01d01d").ended
    compute.stop(ref, 1.0, force=True)


def _plan_a_second_store(new_section: Any, resource_group: str) -> None:
    """``setup --dry-run`` for another store in this resource group plans its tables, and creates nothing."""
    from runvoy_azure.provider import create_provider

    team_b = create_provider(new_section(resource_group=resource_group))
    try:
        planned = team_b.setup(dry_run=True)
        assert [s["action"] for s in planned] == ["exists", "would create", "would create", "would create"]
        assert team_b.setup(dry_run=True) == planned  # still nothing there to find
    finally:
        team_b.close()
