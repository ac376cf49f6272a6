"""`runvoy run --secret` and `runvoy logs` show *** where the command printed a secret (decision 1901)."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import run_script

VALUE = "cli-s3cr3t-value-42"


def test_run_and_logs_show_stars_where_the_secret_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TOKEN", VALUE)
    ran = run_script("run", "--secret", "CLI_TOKEN", 'echo "the token is $CLI_TOKEN"')
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "the token is ***\n"
    assert VALUE not in ran.stderr
    listed = run_script("list", "--json")
    run_id = json.loads(listed.stdout)[0]["id"]
    logs = run_script("logs", run_id, "--json")
    assert VALUE not in logs.stdout and "the token is ***" in logs.stdout
    grep = run_script("logs", run_id, "--grep", VALUE[:8])
    assert grep.returncode == 0 and grep.stdout == ""
