"""Fixtures for the aws provider's tests: one moto server per session (in this process, so the simulator can
reach its backends), reset before every test, and a provider pointed at it with the resources set up."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from aws_test_tools import REGION, config_dict, reset_moto
from simulator_aws import AwsSimulator

CREDENTIAL_VARS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture(autouse=True)
def aws_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no AWS config from the machine: nothing can reach a real account."""
    for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    for var, value in CREDENTIAL_VARS.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # moto parses thousands of AMIs into every new EC2 backend (after each reset); runvoy needs none
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_simulator(moto_endpoint: str) -> Iterator[AwsSimulator]:
    simulator = AwsSimulator(moto_endpoint, REGION)
    simulator.install()
    yield simulator
    simulator.uninstall()


@pytest.fixture
def moto(moto_endpoint: str, aws_simulator: AwsSimulator) -> Iterator[str]:
    """A clean moto (and simulator) for this test."""
    aws_simulator.reset()
    reset_moto(moto_endpoint)
    yield moto_endpoint
    aws_simulator.reset()


@pytest.fixture
def aws_config(moto: str):  # type: ignore[no-untyped-def]
    from runvoy_aws.config import AwsConfig

    return AwsConfig.model_validate(config_dict(moto))


@pytest.fixture
def provider(aws_config):  # type: ignore[no-untyped-def]
    """A provider whose resources exist (runvoy setup ran)."""
    from runvoy_aws.provider import create_provider

    made = create_provider(aws_config, None)
    made.compute.start_retry_delay = 0.01
    made.setup(dry_run=False)
    yield made
    made.close()


@pytest.fixture
def data_provider(aws_config):  # type: ignore[no-untyped-def]
    """A provider with only its DynamoDB tables and bucket (store and lock tests need no cluster)."""
    from runvoy_aws.provider import create_provider
    from runvoy_aws.setup import AwsSetup

    made = create_provider(aws_config, None)
    steps = AwsSetup(made.clients, made.config, "us-east-1")
    for step in (steps._executions_table, steps._locks_table, steps._bucket):
        step(False)
    yield made
    made.close()


@pytest.fixture
def sim(aws_simulator: AwsSimulator, moto: str) -> AwsSimulator:
    return aws_simulator


@pytest.fixture(autouse=True)
def _isolated(runvoy_home: Path) -> Path:
    """Every test gets its own RUNVOY_HOME (the kit's fixture, registered by its pytest plugin)."""
    return runvoy_home
