"""`runvoy run` starts its local supervisor ahead, before importing anything (decision 0213)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from runvoy_cli.entry import may_run_locally
from runvoy_core.testing.waiting import wait_for

RUNVOY = str(Path(sys.executable).parent / "runvoy")


def _runvoy(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "RUNVOY_HOME": str(home), **(env or {})}
    return subprocess.run([RUNVOY, *args], env=full, capture_output=True, text=True, timeout=120)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _with_marker(marker: str) -> list[int]:
    """Processes whose (initial) environment holds the marker variable."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"RUNVOY_TEST_MARK={marker}".encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_detached_run_is_supervised_by_the_supervisor_started_ahead(runvoy_home: Path) -> None:
    done = _runvoy(runvoy_home, "run", "--detach", "sleep 30")
    assert done.returncode == 0, done.stderr
    execution_id = done.stdout.strip()
    with sqlite3.connect(runvoy_home / "state.db") as db:
        (pid,) = db.execute("SELECT sup_pid FROM tasks WHERE execution_id = ?", (execution_id,)).fetchone()
    try:
        assert "supervisor import ahead" in _cmdline(pid), _cmdline(pid)
    finally:
        _runvoy(runvoy_home, "kill", execution_id)


def test_secrets_and_the_env_rule_reach_the_command_through_the_orders(runvoy_home: Path) -> None:
    done = _runvoy(
        runvoy_home,
        "run",
        "--secret",
        "DB_PASSWORD",
        "--env",
        "GIVEN=yes",
        'echo "$DB_PASSWORD/$GIVEN/${NOT_PASSED:-absent}"',
        env={"DB_PASSWORD": "s3cret", "NOT_PASSED": "leak"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "***/yes/absent"  # the value arrived, and was masked (decision 1901)


def test_a_refused_run_leaves_no_supervisor_behind(runvoy_home: Path) -> None:
    marker = uuid.uuid4().hex
    refused = _runvoy(
        runvoy_home, "run", "--lock", "not a lock name!", "true", env={"RUNVOY_TEST_MARK": marker}
    )
    assert refused.returncode == 125, refused.stderr
    # the supervisor started ahead sees its orders pipe close with the CLI and exits
    wait_for(lambda: not _with_marker(marker), what="the supervisor started ahead to exit")


def test_a_run_that_turns_out_to_be_a_cloud_run_leaves_no_supervisor_behind(runvoy_home: Path) -> None:
    marker = uuid.uuid4().hex
    config = runvoy_home / "cloud.toml"
    config.write_text('provider = "nosuch"\n')
    done = _runvoy(runvoy_home, "run", "true", env={"RUNVOY_TEST_MARK": marker, "RUNVOY_CONFIG": str(config)})
    assert done.returncode != 0
    wait_for(lambda: not _with_marker(marker), what="the supervisor started ahead to exit")


def test_only_local_runs_start_a_supervisor_ahead() -> None:
    assert may_run_locally(["run", "true"])
    assert may_run_locally(["--log-level", "debug", "-p", "local", "run", "--detach", "sleep 1"])
    assert not may_run_locally(["run", "--provider", "aws", "true"])
    assert not may_run_locally(["--provider=gcp", "run", "true"])
    assert not may_run_locally(["run", "--help"])
    assert not may_run_locally(["status", "run"])
    assert not may_run_locally([])


@given(
    st.lists(
        st.sampled_from(["run", "-p", "--provider", "local", "aws", "--help", "-d", "x", "--provider=aws"])
    )
)
def test_the_command_line_check_never_fails(args: list[str]) -> None:
    assert may_run_locally(args) in (True, False)
