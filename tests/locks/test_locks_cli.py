"""``runvoy locks list | status | release`` through click's CliRunner against a temporary RUNVOY_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runvoy_cli.main import cli
from runvoy_core.locks import LockManager
from runvoy_core.models import Execution, ExecutionRequest, LockHolder, LockState, Status
from runvoy_core.providers.local.register import LocalLockRegister
from runvoy_core.providers.local.store import LocalStore


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def locks(runvoy_home: Path) -> LockManager:
    return LockManager(LocalLockRegister(runvoy_home), lease=30)


def execution(runvoy_home: Path, eid: str, status: Status) -> None:
    LocalStore(runvoy_home).create(
        Execution(
            id=eid,
            provider="local",
            request=ExecutionRequest(command="true", lock="deploy"),
            status=status,
            lock="deploy",
        )
    )


def holder(eid: str) -> LockHolder:
    return LockHolder(execution_id=eid, provider="local", user="alice", host="box1", command="./deploy.sh")


def test_list_empty_and_populated(locks: LockManager) -> None:
    code, out, err = invoke("locks", "list")
    assert code == 0 and out == "" and "no locks yet" in err
    assert json.loads(invoke("locks", "list", "--json")[1]) == []
    locks.acquire("deploy", holder("aaaaaaaaaaaa"))
    locks.acquire("etl", holder("bbbbbbbbbbbb")).release()
    code, out, err = invoke("locks", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "HOLDER", "USER", "FENCE", "AGE", "LEASE"]
    assert lines[1].split()[:5] == ["deploy", "held", "aaaaaaaaaaaa", "alice", "1"]
    assert lines[1].split()[-1] == "30s"
    assert lines[2].split()[:3] == ["etl", "released", "-"]
    data = json.loads(invoke("locks", "list", "--json")[1])
    assert [d["name"] for d in data] == ["deploy", "etl"]
    assert data[0]["state"] == "held" and data[0]["fence"] == 1 and data[0]["holder"]["user"] == "alice"
    assert data[0]["lease_seconds"] == 30 and data[0]["version"]


def test_status_shows_holder_and_audit(locks: LockManager, runvoy_home: Path) -> None:
    execution(runvoy_home, "aaaaaaaaaaaa", Status.RUNNING)
    locks.acquire("deploy", holder("aaaaaaaaaaaa"))
    code, out, err = invoke("locks", "status", "deploy")
    assert code == 0, err
    assert "holder:" in out and "aaaaaaaaaaaa" in out and "box1" in out and "./deploy.sh" in out
    data = json.loads(invoke("locks", "status", "deploy", "--json")[1])
    assert data["state"] == "held" and data["holder"]["execution_id"] == "aaaaaaaaaaaa"
    assert data["version"] == locks.get("deploy")[1]
    code, out, err = invoke("locks", "status", "nope")
    assert code != 0 and "no lock named 'nope'" in err and "Traceback" not in err + out


def test_release_without_force_refuses_a_running_holder_and_frees_an_ended_one(
    locks: LockManager, runvoy_home: Path
) -> None:
    execution(runvoy_home, "aaaaaaaaaaaa", Status.RUNNING)
    locks.acquire("deploy", holder("aaaaaaaaaaaa"))
    code, out, err = invoke("locks", "release", "deploy")
    assert code == 75, err
    assert "not known to have ended" in err and "--force" in err
    assert locks.get("deploy")[0].state == LockState.HELD
    store = LocalStore(runvoy_home)
    record = store.get("aaaaaaaaaaaa")
    record.status = Status.SUCCEEDED
    store.update(record)
    code, out, err = invoke("locks", "release", "deploy", "--json")
    assert code == 0, err
    assert json.loads(out)["released"] is True
    rec = locks.get("deploy")[0]
    assert rec.state == LockState.RELEASED and rec.audit[-1]["by"] == "observer"
    code, out, err = invoke("locks", "release", "deploy")
    assert code == 0 and "is not held" in err


def test_force_release_asks_and_writes_an_audit_entry(locks: LockManager, runvoy_home: Path) -> None:
    execution(runvoy_home, "aaaaaaaaaaaa", Status.RUNNING)
    lease = locks.acquire("deploy", holder("aaaaaaaaaaaa"))
    code, out, err = invoke("locks", "release", "deploy", "--force", stdin="n\n")
    assert code == 1 and "Release lock 'deploy' held by execution aaaaaaaaaaaa" in err
    assert locks.get("deploy")[0].state == LockState.HELD
    code, out, err = invoke("locks", "release", "deploy", "--force", stdin="y\n")
    assert code == 0, err
    assert "force-released lock 'deploy'" in err
    rec = locks.get("deploy")[0]
    assert rec.state == LockState.RELEASED and rec.fence == 1
    assert rec.audit[-1]["event"] == "force_released" and "@" in rec.audit[-1]["by"]
    assert lease.renew() is False
    code, out, err = invoke("locks", "status", "deploy")
    assert "force_released" in out


def test_force_release_with_yes_and_json(locks: LockManager) -> None:
    locks.acquire("deploy", holder("aaaaaaaaaaaa"))
    code, out, err = invoke("locks", "release", "deploy", "--force", "--json")
    assert code == 2 and "--yes" in err
    code, out, err = invoke("locks", "release", "deploy", "--force", "--yes", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "name": "deploy",
        "released": True,
        "fence": 1,
        "message": "force-released lock 'deploy' (was fence 1)",
    }


def test_force_release_is_refused_when_the_lock_changed_after_it_was_shown(
    locks: LockManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = locks.acquire("deploy", holder("aaaaaaaaaaaa"))
    real_confirm = __import__("click").confirm

    def confirm_after_a_renew(*args, **kwargs):
        lease.renew()  # the holder renews while the operator reads the question
        return real_confirm(*args, **kwargs)

    monkeypatch.setattr("click.confirm", confirm_after_a_renew)
    code, _out, err = invoke("locks", "release", "deploy", "--force", stdin="y\n")
    assert code != 0 and "changed since it was shown" in err
    assert locks.get("deploy")[0].state == LockState.HELD and not lease.lost


def test_release_of_unknown_lock() -> None:
    code, _out, err = invoke("locks", "release", "ghost", "--force", "--yes")
    assert code != 0 and "no lock named 'ghost'" in err


def test_a_lock_with_slots_is_pointed_out_by_its_name(locks: LockManager) -> None:
    locks.acquire_slot("etl", 2, holder("aaaaaaaaaaaa"))
    code, _out, err = invoke("locks", "status", "etl")
    assert code == 125
    assert "no lock named 'etl'" in err and "'etl' has slots: etl#1" in err
    code, out, _err = invoke("locks", "status", "etl#1")
    assert code == 0 and "aaaaaaaaaaaa" in out
    code, _out, err = invoke("locks", "status", "nothing")
    assert code == 125 and "runvoy locks list" in err


def test_status_shows_the_runs_queued_for_the_lock(locks: LockManager, runvoy_home: Path) -> None:
    from runvoy_core.lock_queue import QueueTicket

    locks.acquire("deploy", holder("aaaaaaaaaaaa"))
    for eid in ("bbbbbbbbbbbb", "cccccccccccc"):
        QueueTicket(locks.register, "deploy", holder(eid), lease=30, grace=5, clock=locks.clock).take()
    code, out, _err = invoke("locks", "status", "deploy")
    assert code == 0
    assert "queue:" in out and "bbbbbbbbbbbb (ticket 1), cccccccccccc (ticket 2)" in out
    data = json.loads(invoke("locks", "status", "deploy", "--json")[1])
    assert [(q["ticket"], q["execution_id"]) for q in data["queue"]] == [
        (1, "bbbbbbbbbbbb"),
        (2, "cccccccccccc"),
    ]
    code, out, _err = invoke("locks", "list")
    assert "~" not in out  # the queue's records are not locks


def test_release_of_a_lock_whose_run_was_never_recorded_does_not_suggest_kill(locks: LockManager) -> None:
    """A CLI killed between the lock grant and the record: there is no run to `runvoy kill`."""
    locks.acquire("deploy", holder("9h05t0000002"))
    code, _out, err = invoke("locks", "release", "deploy")
    assert code == 75, err
    assert "runvoy kill" not in err
    assert "never recorded" in err and "runvoy locks release deploy --force" in err
