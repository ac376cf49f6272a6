"""Two ``runvoy server`` processes on one AWS store (DynamoDB, S3, CloudWatch Logs on moto, tasks run by the
cloud simulator of this test process): a run submitted through one replica is followed, killed and listed
through the other (decision 1518; the same checks as tests/server/test_replicas.py on a local home)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_test_tools import config_dict

from tests.server.conftest import RunningServer, launch, new_token, wait_ready
from tests.server.test_replicas import check_replicas


@pytest.fixture
def aws_servers(moto: str, sim: object, tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    from runvoy_core.api import Runvoy

    env = {
        f"RUNVOY_PROVIDERS__AWS__{k.upper()}": json.dumps(v) if isinstance(v, dict | list) else str(v)
        for k, v in config_dict(moto).items()
    }
    with Runvoy(provider="aws", **config_dict(moto)) as rv:
        rv.provider.setup(dry_run=False)
    token = new_token()
    running: list[RunningServer] = []
    try:
        for name in ("one", "two"):
            # each replica has a home of its own: all they share is the provider's store
            home = tmp_path / f"home-{name}"
            home.mkdir()
            process, seen, lines, reader = launch(home, token=token, args=("--provider", "aws"), env=env)
            try:
                running.append(wait_ready(process, seen, lines, reader, token))
            except BaseException:
                process.kill()
                process.wait()
                raise
        yield running[0], running[1]
    finally:
        for server in running:
            server.stop()


def test_two_servers_on_one_aws_store(aws_servers: tuple[RunningServer, RunningServer]) -> None:
    first, second = aws_servers
    check_replicas(first, second, "aws")
