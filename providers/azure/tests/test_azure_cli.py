"""End to end through the CLI (click's CliRunner, in-process) on the azure provider: every byte goes through
the Azure SDK to Azurite and the fake ARM, and the commands really run (CloudSimulator)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runvoy_core.testing.waiting import wait_for


@dataclass
class Outcome:
    code: int
    out: str
    err: str


Invoke = Callable[..., Outcome]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):  # an inline table; keys quoted (they may hold dots)
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


@pytest.fixture
def invoke(new_section: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """`runvoy ...` with a config file whose [providers.azure] points at Azurite and the fake ARM."""
    section = new_section()
    config = tmp_path / "config.toml"
    body = "\n".join(f"{key} = {_toml_value(value)}" for key, value in section.items())
    config.write_text(f"[providers.azure]\n{body}\n", encoding="utf-8")
    monkeypatch.setenv("RUNVOY_CONFIG", str(config))
    from runvoy_cli.main import cli

    def run(*args: str) -> Outcome:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr)

    setup = run("setup", "--provider", "azure")
    assert setup.code == 0, setup.err
    return run


def test_run_prints_hi_and_exits_3(invoke: Invoke) -> None:
    result = invoke("--provider", "azure", "run", "echo hi; exit 3")
    assert result.code == 3, result.err
    assert result.out == "hi\n"
    assert "FAILED (exit 3)" in result.err


def test_run_json_then_status_logs_and_cost(invoke: Invoke) -> None:
    result = invoke(
        "--provider", "azure", "run", "--json", "--cpu", "1", "--memory", "2GiB", "echo one; echo two"
    )
    assert result.code == 0, result.err
    ran = json.loads(result.out)
    assert ran["status"] == "SUCCEEDED" and ran["provider"] == "azure"
    assert ran["cost"]["provider"] == "azure" and ran["cost"]["region"] == "eastus"
    assert float(ran["cost"]["total"]) > 0
    status = json.loads(invoke("--provider", "azure", "status", ran["id"][:6], "--json").out)
    assert status["id"] == ran["id"] and status["exit_code"] == 0
    assert [e["status"] for e in status["events"] if e.get("status")][-1] == "SUCCEEDED"
    assert invoke("--provider", "azure", "logs", ran["id"]).out == "one\ntwo\n"  # from the archive
    assert invoke("--provider", "azure", "logs", ran["id"], "--grep", "tw").out == "two\n"
    listed = json.loads(invoke("--provider", "azure", "list", "--json").out)
    assert [e["id"] for e in listed] == [ran["id"]]
    estimate = invoke("cost", "estimate", "--provider", "azure", "--json")
    assert estimate.code == 0, estimate.err


def test_detach_then_logs_follow_reads_until_the_end(invoke: Invoke) -> None:
    detached = invoke("--provider", "azure", "run", "-d", "echo a; sleep 0.5; echo b")
    assert detached.code == 0, detached.err
    followed = invoke("--provider", "azure", "logs", "-f", detached.out.strip())
    assert followed.code == 0, followed.err
    assert followed.out == "a\nb\n"


def test_detach_status_kill_and_wait(invoke: Invoke) -> None:
    detached = invoke("--provider", "azure", "run", "-d", "--stop-grace", "1s", "echo started; sleep 300")
    execution_id = detached.out.strip()
    wait_for(
        lambda: invoke("--provider", "azure", "logs", execution_id).out == "started\n",
        what="the detached run to print 'started'",
    )
    status = json.loads(invoke("--provider", "azure", "status", execution_id, "--json").out)
    assert status["status"] == "RUNNING"
    killed = invoke("--provider", "azure", "kill", execution_id, "--json")
    assert killed.code == 0, killed.err
    assert json.loads(killed.out)["status"] == "CANCELLED"
    waited = invoke("--provider", "azure", "wait", execution_id, "--json")
    assert json.loads(waited.out)["status"] == "CANCELLED"
    assert invoke("--provider", "azure", "logs", execution_id).out == "started\n"


def test_timeout_exits_124(invoke: Invoke) -> None:
    # the deadline counts from the record's creation: 3 s leave a loaded machine time to print "begin"
    started = time.monotonic()
    result = invoke(
        "--provider", "azure", "run", "--timeout", "3s", "--stop-grace", "1s", "echo begin; sleep 300"
    )
    assert result.code == 124, result.err
    assert result.out == "begin\n"
    assert time.monotonic() - started < 120


def test_locks_conflict_list_status_and_release(invoke: Invoke) -> None:
    holder = invoke("--provider", "azure", "run", "-d", "--lock", "nightly", "sleep 300").out.strip()
    try:
        conflict = invoke("--provider", "azure", "run", "--lock", "nightly", "true")
        assert conflict.code == 75, conflict.err
        assert holder in conflict.err
        listed = json.loads(invoke("locks", "list", "--provider", "azure", "--json").out)
        assert [lock["name"] for lock in listed] == ["nightly"]
        status = json.loads(invoke("locks", "status", "nightly", "--provider", "azure", "--json").out)
        assert status["holder"]["execution_id"] == holder and status["fence"] == 1
    finally:
        invoke("--provider", "azure", "kill", "--force", holder)
    after = json.loads(invoke("locks", "status", "nightly", "--provider", "azure", "--json").out)
    assert after["state"] == "released"
    again = invoke("--provider", "azure", "run", "--lock", "nightly", 'echo "fence $RUNVOY_FENCE"')
    assert again.code == 0 and again.out == "fence 2\n"


def test_setup_dry_run_and_a_usage_error(invoke: Invoke) -> None:
    dry = invoke("setup", "--provider", "azure", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert {step["action"] for step in json.loads(dry.out)} == {"exists"}
    bad = invoke("--provider", "azure", "run", "--cpu", "16", "true")
    assert bad.code == 125  # a value runvoy (not the parser) rejects: decision 0912
    assert "Traceback" not in bad.err and "0.1 to 4 vCPU" in bad.err
