"""`runvoy run` in-process through click's CliRunner, on the local provider (real processes, real SQLite)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.testing.waiting import DEADLINE, wait_for, wait_for_file

Invoke = Callable[..., Any]


def test_run_prints_hello(invoke: Invoke) -> None:
    result = invoke("run", "echo hello")
    assert result.code == 0, result.err
    assert result.out == "hello\n"
    summary = result.err.strip().splitlines()[-1]
    assert summary.startswith("runvoy: ") and "SUCCEEDED (exit 0)" in summary and "cost $0" in summary


def test_run_streams_both_streams_and_exits_with_the_code(invoke: Invoke) -> None:
    result = invoke("run", "echo out; echo err >&2; exit 3")
    assert result.code == 3
    assert result.out == "out\n"
    assert result.err.splitlines()[0] == "err"
    assert "FAILED (exit 3)" in result.err


def test_several_arguments_are_argv_not_a_shell_string(invoke: Invoke) -> None:
    result = invoke("run", "-q", "--", "printf", "%s|", "a b", "$HOME", ";")
    assert result.code == 0, result.err
    assert result.out == "a b|$HOME|;|\n"  # output is stored as lines: the last one gets its newline
    assert result.err == ""


def test_env_labels_and_execution_id_reach_the_command(invoke: Invoke) -> None:
    result = invoke(
        "run", "-q", "--env", "GREETING=hi there", "-e", "N=2", "--label", "team=data",
        'echo "$GREETING $N $RUNVOY_EXECUTION_ID"',
    )  # fmt: skip
    assert result.code == 0, result.err
    greeting, n, execution_id = result.out.rsplit(" ", 2)
    assert (greeting, n) == ("hi there", "2")
    listed = invoke("list", "--label", "team=data", "--json")
    assert [e["id"] for e in json.loads(listed.out)] == [execution_id.strip()]
    assert json.loads(invoke("list", "--label", "team=other", "--json").out) == []


def test_json_attached_prints_the_execution_and_sends_output_to_stderr(invoke: Invoke) -> None:
    result = invoke("run", "--json", "echo to-stderr-now; exit 4")
    assert result.code == 4
    data = json.loads(result.out)
    assert data["status"] == "FAILED" and data["exit_code"] == 4 and data["provider"] == "local"
    assert data["duration_seconds"] is not None
    assert "to-stderr-now" in result.err


def test_quiet_drops_the_summary(invoke: Invoke) -> None:
    result = invoke("run", "--quiet", "echo x >&2")
    assert result.code == 0 and result.err == "x\n"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_detach_status_kill_timeout_and_list_shows_them_all(invoke: Invoke, tmp_path: Path) -> None:
    assert invoke("run", "echo hello").out == "hello\n"
    assert invoke("run", "echo out; echo err >&2; exit 3").code == 3
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    detached = invoke("run", "--detach", f"echo $$ > {pidfile}; sleep 300 & sleep 300; wait")
    assert detached.code == 0, detached.err
    assert time.monotonic() - started < 120  # it did not wait for the command (300 s)
    execution_id = detached.out.strip()
    assert len(execution_id) == 12 and detached.err == ""

    wait_for_file(pidfile, containing="\n")
    pgid = os.getpgid(int(pidfile.read_text()))
    status = invoke("status", execution_id[:5])
    assert status.code == 0, status.err
    assert "status:     RUNNING" in status.out
    assert "history:" in status.out and "created" in status.out

    killed = invoke("kill", execution_id[:6])
    assert killed.code == 0, killed.err
    assert killed.out.startswith(f"{execution_id} CANCELLED")
    # the whole process group is gone, the backgrounded sleep included
    wait_for(lambda: not _group_alive(pgid), what=f"process group {pgid} to be gone after kill")
    data = json.loads(invoke("status", execution_id, "--json").out)
    assert data["status"] == "CANCELLED"
    assert [e["event"] for e in data["events"]][-1] == "finished"

    again = invoke("kill", execution_id)
    assert again.code == 0 and "already ended (CANCELLED)" in again.err

    timed = invoke("run", "--timeout", "2s", "sleep 300")
    assert timed.code == 124 and "TIMED_OUT" in timed.err
    listed = invoke("list")
    assert listed.code == 0
    rows = listed.lines()
    assert rows[0].split()[:4] == ["ID", "STATUS", "EXIT", "PROVIDER"]
    assert [row.split()[1] for row in rows[1:]] == ["TIMED_OUT", "CANCELLED", "FAILED", "SUCCEEDED"]
    assert rows[2].startswith(execution_id)


def test_timeout_ends_timed_out_in_about_the_timeout(invoke: Invoke) -> None:
    started = time.monotonic()
    result = invoke("run", "--timeout", "2s", "sleep 300")
    elapsed = time.monotonic() - started
    assert result.code == 124, result.err
    # never before the timeout; the upper bound only says it was not the command's 300 s (load stretches it)
    assert 1.9 <= elapsed < DEADLINE, elapsed
    assert "TIMED_OUT" in result.err and "exceeded its timeout of 2s" in result.err
    data = json.loads(invoke("status", "--json", result.err.split()[1]).out)
    assert data["status"] == "TIMED_OUT" and data["reason"] == "exceeded its timeout of 2s"


def test_detach_json(invoke: Invoke) -> None:
    result = invoke("run", "-d", "--json", "exit 5")
    data = json.loads(result.out)
    waited = invoke("wait", data["id"], "--json")
    assert waited.code == 5
    assert json.loads(waited.out)["status"] == "FAILED"


def test_lock_conflict_exits_75(invoke: Invoke, clean_error: Callable[..., None]) -> None:
    holder = invoke("run", "-d", "--lock", "deploy", "sleep 300")
    assert holder.code == 0, holder.err
    try:
        blocked = invoke("run", "--lock", "deploy", "echo never")
        clean_error(blocked, 75, "deploy")
        assert "never" not in blocked.out
        waited = invoke("run", "--lock", "deploy", "--on-conflict", "wait", "--lock-timeout", "1s", "true")
        assert waited.code == 75
        assert "waiting for lock 'deploy'" in waited.err
    finally:
        assert invoke("kill", "--force", holder.out.strip()).code == 0
    assert invoke("run", "-q", "--lock", "deploy", "echo free").out == "free\n"


def test_secret_values_stay_out_of_records(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_TOKEN", "s3cr3t-value")
    result = invoke("run", "--json", "--secret", "CLI_TEST_TOKEN", 'test "${CLI_TEST_TOKEN#s3cr3t}" = -value')
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["request"]["secrets"] == ["CLI_TEST_TOKEN"]
    status = invoke("status", data["id"], "--json")
    assert "s3cr3t-value" not in status.out and "s3cr3t-value" not in result.out
