"""End to end through the CLI against moto + the cloud simulator (in-process, with click's CliRunner, so the
simulator sees the tasks; the lock-conflict test adds a real second process)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time

import pytest
from aws_test_tools import config_dict

from runvoy_core.testing.waiting import DEADLINE, gate, wait_for, wait_for_output


def needs(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not written yet")


@pytest.fixture
def aws_cli_env(moto, sim, monkeypatch) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The CLI configured through RUNVOY_PROVIDERS__AWS__* (what a user's environment would do)."""
    # a table is JSON in a RUNVOY_* variable (docs/configuration.md)
    env = {
        f"RUNVOY_PROVIDERS__AWS__{k.upper()}": json.dumps(v) if isinstance(v, dict | list) else str(v)
        for k, v in config_dict(moto).items()
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def aws_env(aws_cli_env) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """... and the account set up."""
    env = aws_cli_env
    from runvoy_core.api import Runvoy

    with Runvoy(provider="aws") as rv:
        rv.provider.setup(dry_run=False)
    return env


def invoke(*args: str):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from runvoy_cli.main import cli

    runner = CliRunner()
    return runner.invoke(cli, list(args), catch_exceptions=False)


def test_run_prints_the_output_and_exits_with_the_command_code(aws_env) -> None:
    needs("runvoy_cli.commands.run")
    result = invoke("--provider", "aws", "run", "echo hi; exit 3")
    assert result.exit_code == 3, result.output
    assert "hi\n" in result.stdout


def test_run_json_carries_the_fargate_cost(aws_env) -> None:
    needs("runvoy_cli.commands.run")
    result = invoke("--provider", "aws", "run", "--json", "--cpu", "1", "--memory", "2GiB", "echo ok")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "SUCCEEDED" and record["provider"] == "aws"
    assert record["task_ref"].startswith("arn:aws:ecs:us-east-1:")
    cost = record["cost"]
    assert cost["provider"] == "aws" and float(cost["total"]) > 0
    # 1 vCPU + 2 GB for the one-minute minimum in us-east-1
    assert abs(float(cost["total"]) - (0.04048 + 2 * 0.004445) / 60) < 1e-6


def test_run_refuses_an_invalid_fargate_size(aws_env) -> None:
    needs("runvoy_cli.commands.run")
    from runvoy_core.errors import UsageError

    result = invoke("--provider", "aws", "run", "--cpu", "0.25", "--memory", "4GiB", "true")
    assert result.exit_code == UsageError.exit_code
    assert "not valid with --cpu 0.25 on Fargate" in result.stderr
    assert "Traceback" not in result.output


def test_timeout_ends_the_run_as_timed_out(aws_env) -> None:
    needs("runvoy_cli.commands.run")
    result = invoke(
        "--provider", "aws", "run", "--timeout", "3s", "--stop-grace", "2s", "echo start; sleep 300"
    )  # 3 s from the record's creation leave a loaded machine time to print "start"
    assert result.exit_code == 124, result.output
    assert "start" in result.stdout


def test_detach_status_logs_follow_and_kill(aws_env) -> None:
    needs(
        "runvoy_cli.commands.run",
        "runvoy_cli.commands.status",
        "runvoy_cli.commands.logs",
        "runvoy_cli.commands.kill",
    )
    started = invoke(
        "--provider",
        "aws",
        "run",
        "--detach",
        "--stop-grace",
        "2s",
        "echo up; while true; do sleep 0.05; done",
    )
    assert started.exit_code == 0, started.output
    execution_id = started.stdout.strip().splitlines()[-1]
    from runvoy_core.api import Runvoy

    with Runvoy(provider="aws") as rv:
        wait_for_output(rv, execution_id, "up")
    status = invoke("--provider", "aws", "status", "--json", execution_id)
    assert json.loads(status.stdout)["status"] == "RUNNING"

    def kill_soon() -> None:
        # not a handshake: the kill may land before or while `logs -f` follows, and both must end the same
        time.sleep(1.0)
        with Runvoy(provider="aws") as other:  # as a second terminal's `runvoy kill` would
            other.kill(execution_id)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    followed = invoke("--provider", "aws", "logs", "-f", execution_id)
    killer.join()
    assert "up" in followed.stdout.splitlines()
    final = invoke("--provider", "aws", "status", "--json", execution_id)
    assert json.loads(final.stdout)["status"] == "CANCELLED"

    again = invoke("--provider", "aws", "run", "--detach", "sleep 30")
    other_id = again.stdout.strip().splitlines()[-1]
    killed = invoke("--provider", "aws", "kill", other_id)
    assert killed.exit_code == 0, killed.output
    wait_for(
        lambda: (
            json.loads(invoke("--provider", "aws", "status", "--json", other_id).stdout)["status"]
            == "CANCELLED"
        ),
        what=f"{other_id} to be CANCELLED",
    )


def test_a_lock_conflict_is_detected_across_two_processes(aws_env, tmp_path) -> None:
    needs("runvoy_cli.commands.run")
    holder = {}
    release = tmp_path / "release"

    def hold() -> None:
        # holds the lock until the test has seen the second process refused, however slow the machine is
        holder["result"] = invoke(
            "--provider", "aws", "run", "--lock", "nightly", f"echo holding; {gate(release)}"
        )

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    from runvoy_core.api import Runvoy

    try:
        with Runvoy(provider="aws") as rv:
            wait_for(lambda: rv.provider.locks.read("nightly"), what="the holder to take the lock")
        # a second process on another "machine": only the DynamoDB lock table is shared
        env = {**os.environ, **aws_env}
        other = subprocess.run(
            [
                sys.executable,
                "-m",
                "runvoy_cli.main",
                "--provider",
                "aws",
                "run",
                "--lock",
                "nightly",
                "echo never",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        release.touch()
    thread.join(DEADLINE)
    assert other.returncode == 75, other.stderr
    assert "nightly" in other.stderr and "never" not in other.stdout
    assert holder["result"].exit_code == 0, holder["result"].output


def test_setup_dry_run_then_apply_then_nothing_to_do(aws_cli_env) -> None:
    needs("runvoy_cli.commands.setup")
    dry = invoke("--provider", "aws", "setup", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert {s["action"] for s in json.loads(dry.stdout)} >= {"would create"}
    applied = invoke("--provider", "aws", "setup")
    assert applied.exit_code == 0, applied.output
    assert "created" in applied.stdout and "runvoy-executions" in applied.stdout
    again = json.loads(invoke("--provider", "aws", "setup", "--json").stdout)
    assert {s["action"] for s in again} == {"exists"}, again


def test_reconcile_and_list(aws_env, sim) -> None:
    needs("runvoy_cli.commands.reconcile", "runvoy_cli.commands.listing", "runvoy_cli.commands.run")
    started = invoke("--provider", "aws", "run", "--detach", "echo quick")
    execution_id = started.stdout.strip().splitlines()[-1]
    sim.wait_all()  # the task ends; nobody watches it
    result = invoke("--provider", "aws", "reconcile")
    assert result.exit_code == 0, result.output
    listed = invoke("--provider", "aws", "list", "--json")
    assert listed.exit_code == 0, listed.output
    records = json.loads(listed.stdout)
    assert [(r["id"], r["status"]) for r in records] == [(execution_id, "SUCCEEDED")]
