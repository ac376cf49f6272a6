"""Masked secrets on AWS (decision 1901): ECS puts the value in the container and CloudWatch stores what it
prints as printed; runvoy masks it wherever the output passes through it — `run`, `logs`, `--json`, a grep,
and the S3 archive. Through the CLI against moto + the cloud simulator."""

from __future__ import annotations

import base64
import json

import pytest
from aws_test_tools import config_dict

VALUE = "db-pa55word-for-masking"


@pytest.fixture
def aws_env(moto, sim, monkeypatch):  # type: ignore[no-untyped-def]
    for key, value in config_dict(moto).items():
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        monkeypatch.setenv(f"RUNVOY_PROVIDERS__AWS__{key.upper()}", text)
    from runvoy_core.api import Runvoy

    with Runvoy(provider="aws") as rv:
        rv.provider.setup(dry_run=False)
        rv.provider.clients.client("ssm").put_parameter(
            Name="/prod/db-password", Value=VALUE, Type="SecureString"
        )
        yield rv


def invoke(*args: str):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from runvoy_cli.main import cli

    return CliRunner().invoke(cli, ["--provider", "aws", *args], catch_exceptions=False)


def test_the_secret_is_masked_in_run_logs_grep_and_the_archive(aws_env) -> None:  # type: ignore[no-untyped-def]
    encoded = base64.b64encode(f"admin:{VALUE}".encode()).decode()
    ran = invoke(
        "run",
        "--json",
        "--secret",
        "/prod/db-password",
        'echo "pw=$DB_PASSWORD"; printf "admin:%s" "$DB_PASSWORD" | base64; echo done',
    )
    assert ran.exit_code == 0, ran.output
    record = json.loads(ran.stdout)
    attached = invoke("run", "--secret", "/prod/db-password", 'echo "again $DB_PASSWORD"')
    assert attached.exit_code == 0 and attached.stdout == "again ***\n"

    logs = invoke("logs", record["id"])
    assert logs.stdout.splitlines()[0] == "pw=***" and logs.stdout.splitlines()[-1] == "done"
    as_json = invoke("logs", record["id"], "--json")
    for shown in (logs.stdout, as_json.stdout, ran.stdout):
        assert VALUE not in shown and encoded[8:24] not in shown
    assert invoke("logs", record["id"], "--grep", VALUE[:6]).stdout == ""
    # the pages a server hands out (log_page) read CloudWatch too: masked the same way
    from runvoy_core.api import Runvoy

    with Runvoy(provider="aws") as rv:
        paged = [event.message for event in rv.log_page(record["id"], limit=100).events]
    assert paged[0] == "pw=***" and VALUE not in "".join(paged)

    provider = aws_env.provider
    archived = provider.clients.client("s3").get_object(
        Bucket="runvoy-test-archive", Key=f"logs/{record['id']}.log"
    )
    body = archived["Body"].read().decode()
    assert "pw=***" in body and VALUE not in body and encoded[8:24] not in body
    # what CloudWatch itself stores is what the command printed: the docs say so
    stream = provider.logs.stream_name(record["task_ref"])
    raw = provider.clients.client("logs").get_log_events(
        logGroupName=provider.config.log_group, logStreamName=stream, startFromHead=True
    )
    assert f"pw={VALUE}" in [event["message"] for event in raw["events"]]


def test_a_secret_runvoy_cannot_read_is_shown_with_a_warning_not_an_error(aws_env) -> None:  # type: ignore[no-untyped-def]
    """Masking guards against showing a secret by accident; it is no access control: when the value cannot be
    read back (here: deleted after the run), the output is shown and a warning names the secret."""
    ran = invoke("run", "--json", "--secret", "/prod/db-password", 'echo "pw=$DB_PASSWORD"')
    record = json.loads(ran.stdout)
    aws_env.provider.clients.client("ssm").delete_parameter(Name="/prod/db-password")
    shown = invoke("logs", record["id"])
    assert shown.exit_code == 0 and shown.stdout == f"pw={VALUE}\n"
    assert "logs.secrets_not_masked" in shown.stderr and "/prod/db-password" in shown.stderr
