"""status, logs, list, wait, reconcile, setup, providers, config and playbooks through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.testing.waiting import wait_for

Invoke = Callable[..., Any]
CleanError = Callable[..., None]


def _run(invoke: Invoke, *args: str) -> dict[str, Any]:
    result = invoke("run", "--json", *args)
    data: dict[str, Any] = json.loads(result.out)
    return data


def test_status_shows_fields_cost_equivalents_and_history(invoke: Invoke) -> None:
    ran = _run(invoke, "--cpu", "1", "--memory", "2GiB", "--label", "k=v", "echo hi; exit 2")
    result = invoke("status", ran["id"][:4])
    assert result.code == 0, result.err
    fields = dict(line.split(":", 1) for line in result.out.split("\n\nhistory:")[0].splitlines())
    fields = {k: v.strip() for k, v in fields.items()}
    assert fields["status"] == "FAILED" and fields["exit code"] == "2"
    assert fields["provider"] == "local" and fields["command"] == "echo hi; exit 2"
    assert fields["resources"] == "1 vCPU, 2GiB, x86_64" and fields["labels"] == "k=v"
    assert fields["cost"].startswith("$0; would cost on aws $")
    assert "gcp $" in fields["cost"] and "azure $" in fields["cost"]
    history = result.out.split("\n\nhistory:\n")[1].splitlines()
    assert history[0].split() == ["AT", "STATUS", "EVENT", "DETAIL"]
    assert history[1].split()[3] == "created"
    assert "finished" in history[-1]


def test_status_json(invoke: Invoke) -> None:
    ran = _run(invoke, "true")
    data = json.loads(invoke("status", ran["id"], "--json").out)
    assert data["id"] == ran["id"] and data["status"] == "SUCCEEDED" and data["exit_code"] == 0
    assert data["cost"]["total"] == "0" and set(data["cost"]["equivalents"]) == {"aws", "gcp", "azure"}
    assert data["events"][0]["status"] == "PENDING"
    assert "events" not in json.loads(invoke("status", ran["id"], "--json", "--no-events").out)


def test_logs_tail_grep_timestamps_json(invoke: Invoke) -> None:
    ran = _run(invoke, "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2")
    full = invoke("logs", ran["id"])
    assert full.out == "line1\nline2\nline3\nline4\nline5\n" and full.err == "oops\n"
    assert invoke("logs", ran["id"], "--tail", "2").err == "oops\n"
    assert invoke("logs", ran["id"], "--tail", "2").out == "line5\n"
    assert invoke("logs", ran["id"], "-n", "3").out == "line4\nline5\n"
    assert invoke("logs", ran["id"], "--grep", "line3").out == "line3\n"
    stamped = invoke("logs", ran["id"], "--timestamps").out.splitlines()
    assert len(stamped) == 5 and stamped[0].endswith("Z line1") and stamped[0][:2] == "20"
    events = [json.loads(line) for line in invoke("logs", ran["id"], "--json").out.splitlines()]
    assert [(e["stream"], e["message"]) for e in events][-2:] == [("stdout", "line5"), ("stderr", "oops")]


def test_logs_follow_reads_until_the_end(invoke: Invoke) -> None:
    detached = invoke("run", "-d", "echo a; sleep 0.5; echo b")
    followed = invoke("logs", "-f", detached.out.strip())
    assert followed.code == 0 and followed.out == "a\nb\n"


def test_list_filters_and_json(invoke: Invoke) -> None:
    ok = _run(invoke, "true")
    bad = _run(invoke, "exit 1")
    listed = json.loads(invoke("list", "--json").out)
    assert [e["id"] for e in listed] == [bad["id"], ok["id"]]
    assert [e["id"] for e in json.loads(invoke("list", "--status", "failed", "--json").out)] == [bad["id"]]
    ended = json.loads(invoke("list", "-s", "ended", "-s", "RUNNING", "--json").out)
    assert len(ended) == 2
    assert json.loads(invoke("list", "--status", "active", "--json").out) == []
    assert len(json.loads(invoke("list", "--limit", "1", "--json").out)) == 1
    assert len(json.loads(invoke("list", "--since", "1h", "--json").out)) == 2
    table = invoke("list", "--status", "SUCCEEDED").out.splitlines()
    assert table[0].split() == ["ID", "STATUS", "EXIT", "PROVIDER", "AGE", "DURATION", "COST", "COMMAND"]
    assert table[1].split()[:4] == [ok["id"], "SUCCEEDED", "0", "local"]


def test_list_empty(invoke: Invoke) -> None:
    result = invoke("list")
    assert result.code == 0 and result.out == "" and "no executions" in result.err
    assert json.loads(invoke("list", "--json").out) == []


def _wait_running(invoke: Invoke, execution_id: str) -> None:
    wait_for(
        lambda: json.loads(invoke("status", execution_id, "--json").out)["status"] == "RUNNING",
        what=f"{execution_id} to be RUNNING",
    )


def test_wait_exits_with_the_exit_code(invoke: Invoke) -> None:
    detached = invoke("run", "-d", "sleep 0.3; exit 6").out.strip()
    result = invoke("wait", detached)
    assert result.code == 6 and result.out.startswith(f"{detached} FAILED (exit 6)")
    still = invoke("run", "-d", "sleep 300").out.strip()
    try:
        _wait_running(invoke, still)
        timed = invoke("wait", still, "--timeout", "0.2s")
        assert timed.code == 124 and "still RUNNING" in timed.err
    finally:
        invoke("kill", "--force", still)


def test_kill_no_wait_and_json(invoke: Invoke) -> None:
    detached = invoke("run", "-d", "sleep 300").out.strip()
    _wait_running(invoke, detached)
    sent = invoke("kill", detached, "--no-wait", "--json")
    assert sent.code == 0 and json.loads(sent.out)["status"] in ("STOPPING", "CANCELLED")
    done = json.loads(invoke("wait", detached, "--json").out)
    assert done["status"] == "CANCELLED"


def test_reconcile_and_setup(invoke: Invoke) -> None:
    result = invoke("reconcile", "--json")
    assert result.code == 0 and isinstance(json.loads(result.out), list)
    assert "nothing to repair" in invoke("reconcile").err
    dry = invoke("setup", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert all({"resource", "action"} <= set(item) for item in json.loads(dry.out))
    table = invoke("setup")
    assert table.code == 0 and table.out.splitlines()[0].split() == ["RESOURCE", "ACTION", "DETAIL"]


def test_providers_lists_local_with_its_capabilities(invoke: Invoke) -> None:
    data = json.loads(invoke("providers", "--json").out)
    local = next(p for p in data["providers"] if p["name"] == "local")
    assert local["default"] is True and "graceful_stop" in local["capabilities"]
    assert isinstance(data["failures"], list)
    table = invoke("providers")
    assert table.code == 0 and table.out.splitlines()[0].split()[:3] == [
        "PROVIDER",
        "DISTRIBUTION",
        "VERSION",
    ]
    assert any(line.startswith("local *") for line in table.out.splitlines())


def test_providers_reports_a_broken_plugin(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    from runvoy_core.plugins import manager
    from runvoy_core.plugins.manager import LoadedPlugins, PluginFailure

    real = manager.load_plugins()
    broken = LoadedPlugins(
        registry=real.registry,
        hooks=real.hooks,
        failures=[PluginFailure("acme", "runvoy-acme", "ImportError: no module named acme_sdk")],
    )
    monkeypatch.setattr(manager, "_CACHE", broken)
    result = invoke("providers")
    assert result.code == 0
    assert "plugin 'acme' (runvoy-acme) failed to load: ImportError: no module named acme_sdk" in result.err
    data = json.loads(invoke("providers", "--json").out)
    assert data["failures"] == [
        {"plugin": "acme", "distribution": "runvoy-acme", "error": "ImportError: no module named acme_sdk"}
    ]


def test_config_show_masks_secrets_and_names_the_file(invoke: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'provider = "local"\n'
        "[notify]\nwebhook_url = 'https://hooks.example.com/services/T000/B000/XYZSECRET'\n"
        "[providers.local]\nsecret_env_prefix = 'APP_'\n"
    )
    result = invoke("config", "show")
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"# config file: {path}"
    assert 'provider = "local"' in result.out
    assert "XYZSECRET" not in result.out and "hooks.example.com" in result.out
    data = json.loads(invoke("config", "show", "--json").out)
    assert data["config_file"] == str(path) and data["config_file_exists"] is True
    assert data["settings"]["providers"]["local"]["secret_env_prefix"] == "********"
    assert data["settings"]["notify"]["webhook_url"] == "https://hooks.example.com/********"


def test_config_show_without_a_file(invoke: Invoke) -> None:
    result = invoke("config", "show")
    assert result.code == 0 and "(not found" in result.out.splitlines()[0]


def test_config_validate(invoke: Invoke, clean_error: CleanError, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert invoke("config", "validate").code == 0
    path.write_text("[providers.local]\nshell = '/bin/bash'\n[providers.elsewhere]\nx = 1\n")
    ok = invoke("config", "validate", "--json")
    assert ok.code == 0, ok.err
    report = json.loads(ok.out)
    assert report["valid"] is True and report["providers_checked"] == ["local"]
    assert "elsewhere" in report["warnings"][0]
    path.write_text("[providers.local]\ncontainer_runtime = 'docker'\n")
    clean_error(invoke("config", "validate"), 125, "providers.local.container_runtime", str(path))
    path.write_text("[providers.local]\nshel = '/bin/sh'\n")
    clean_error(invoke("config", "validate"), 125, "providers.local.shel: unknown setting")
    path.write_text("provider = 'nosuch'\n")
    clean_error(invoke("config", "validate"), 125, "provider = 'nosuch' is not an installed provider")


def test_version(invoke: Invoke) -> None:
    result = invoke("--version")
    assert result.code == 0 and result.out.startswith("runvoy ")


PLAYBOOK = """\
name: demo
env: {GREETING: hello}
labels: {team: data}
steps:
  - name: greet
    run: echo "$GREETING $WHO"
    env: {WHO: world}
  - name: scoped
    run: |
      cd /
      echo "WHO=${WHO:-unset}"
  - name: flaky
    run: exit 3
    continue_on_error: true
  - name: fails
    run: |
      echo before
      false
      echo after
  - name: never
    run: echo never
"""


def test_playbook_runs_as_one_execution(invoke: Invoke, tmp_path: Path) -> None:
    book = tmp_path / "demo.yaml"
    book.write_text(PLAYBOOK)
    result = invoke("run", "-f", str(book), "--env", "GREETING=hi")
    assert result.code == 1, result.err
    assert result.out == "hi world\nWHO=unset\nbefore\n"
    banners = [line for line in result.err.splitlines() if line.startswith("==>")]
    assert banners[0] == "==> [1/5] greet"
    assert "==> [3/5] flaky: failed with exit code 3 (continue_on_error: going on)" in banners
    assert banners[-1] == "==> [4/5] fails: failed with exit code 1; stopping the playbook"
    listed = json.loads(invoke("list", "--json").out)
    assert len(listed) == 1
    assert listed[0]["request"]["labels"] == {"team": "data", "playbook": "demo"}
    assert listed[0]["request"]["env"] == {"GREETING": "hi"}


def test_playbook_step_timeout(invoke: Invoke, tmp_path: Path) -> None:
    book = tmp_path / "slow.yaml"
    book.write_text("steps:\n  - {name: slow, run: sleep 300, timeout: 1s}\n  - run: echo unreachable\n")
    result = invoke("run", "-f", str(book))
    assert result.code == 124
    assert "==> [1/2] slow: timed out after 1s; stopping the playbook" in result.err
    assert "unreachable" not in result.out


def test_every_command_has_help(invoke: Invoke) -> None:
    from runvoy_cli.main import COMMANDS

    for name in COMMANDS:
        result = invoke(name, "--help")
        assert result.code == 0, (name, result.err)
        assert result.out.startswith(f"Usage: runvoy {name} ")
