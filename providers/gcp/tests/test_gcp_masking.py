"""Masked secrets on GCP (decision 1901): Cloud Run puts the Secret Manager value in the container and Cloud
Logging stores what it prints; runvoy masks it in `run`, `logs`, `--json`, a grep and the GCS archive. Through
the CLI against the fake Cloud Run (which runs the command), the fake Cloud Logging and fake-gcs-server."""

from __future__ import annotations

import base64
import json

import pytest
from click.testing import CliRunner

VALUE = "gcp-s3cret-value-to-mask"


@pytest.fixture
def invoke(gcp_settings, monkeypatch: pytest.MonkeyPatch, provider, fake_run, project):  # type: ignore[no-untyped-def]
    for key, value in gcp_settings.items():
        text = (
            json.dumps(value)
            if isinstance(value, dict | list)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        monkeypatch.setenv(f"RUNVOY_PROVIDERS__GCP__{key.upper()}", text)
    monkeypatch.setenv("RUNVOY_PROVIDER", "gcp")
    monkeypatch.setenv("RUNVOY_POLL_INTERVAL_MAX", "0.2")
    fake_run.put_secret(project, "api-token", VALUE)
    from runvoy_cli.main import cli

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, list(args), catch_exceptions=False, prog_name="runvoy")

    return run


def test_the_secret_is_masked_in_run_logs_grep_and_the_archive(invoke, provider) -> None:  # type: ignore[no-untyped-def]
    encoded = base64.b64encode(f"key={VALUE}".encode()).decode()
    ran = invoke(
        "run",
        "--secret",
        "api-token",
        'echo "token=$API_TOKEN"; printf "key=%s" "$API_TOKEN" | base64; echo done',
    )
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.splitlines()[0] == "token=***" and VALUE not in ran.stdout
    execution_id = json.loads(invoke("list", "--json").stdout)[0]["id"]
    for shown in (invoke("logs", execution_id).stdout, invoke("logs", execution_id, "--json").stdout):
        assert "token=***" in shown and VALUE not in shown and encoded[8:24] not in shown
    assert invoke("logs", execution_id, "--grep", VALUE[:6]).stdout == ""
    archived = provider.logs.read_archive(execution_id)
    assert archived is not None
    messages = [event.message for event in archived]
    assert "token=***" in messages and not any(VALUE in m or encoded[8:24] in m for m in messages)
