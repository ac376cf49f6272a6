"""Fixtures of the gcp provider's tests: fake-gcs-server, the in-repo fakes of Cloud Run v2 and Cloud Logging
(session-scoped, on free ports of 127.0.0.1), and a provider wired to them through the real Google clients.

Each test gets its own GCP project id and bucket, so jobs, executions, log entries and objects of one test
are invisible to the others."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from runvoy_core.testing.packages import load_package

_FAKES = "runvoy_gcp_testfakes"


load_package(Path(__file__).parent / "fakes", _FAKES)

from runvoy_gcp_testfakes.cloud_logging import FakeCloudLogging  # noqa: E402
from runvoy_gcp_testfakes.cloud_run import FakeCloudRun  # noqa: E402
from runvoy_gcp_testfakes.gcs_server import FakeGcsServer  # noqa: E402
from runvoy_gcp_testfakes.server import MonotonicClock  # noqa: E402

from runvoy_core.testing.simulator import CloudSimulator  # noqa: E402


@pytest.fixture(scope="session")
def simulator() -> Iterator[CloudSimulator]:
    sim = CloudSimulator()
    yield sim
    sim.shutdown()


@pytest.fixture(scope="session")
def fake_logging() -> Iterator[FakeCloudLogging]:
    fake = FakeCloudLogging().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_run(simulator: CloudSimulator, fake_logging: FakeCloudLogging) -> Iterator[FakeCloudRun]:
    fake = FakeCloudRun(simulator, fake_logging.store).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGcsServer]:
    server = FakeGcsServer().start()
    yield server
    server.stop()


@pytest.fixture
def project() -> str:
    return "p-" + secrets.token_hex(4)


@pytest.fixture
def gcp_settings(
    project: str, fake_run: FakeCloudRun, fake_logging: FakeCloudLogging, fake_gcs: FakeGcsServer
) -> Iterator[dict[str, object]]:
    """The [providers.gcp] section pointing at the local servers (a fresh project and bucket per test)."""
    section: dict[str, object] = {
        "project": project,
        "region": "us-central1",
        "bucket": f"b-{project}",
        "run_endpoint": fake_run.endpoint,
        "logging_endpoint": fake_logging.endpoint,
        "storage_endpoint": fake_gcs.endpoint,
        "secretmanager_endpoint": fake_run.endpoint,
        "anonymous_credentials": True,
        "request_timeout": 30.0,  # only a hung fake hits it: a loaded machine must not turn slowness into a fault
        "retry_attempts": 4,
        "retry_backoff": 0.05,
        # the suite reads logs far faster than Cloud Logging's quota allows: test_gcp_quotas.py keeps to it
        "rate_limits": {"logging.entries.list": 10_000.0},
        "image": "python:3.12-slim",
    }
    yield section
    fake_logging.quota = None
    fake_logging.server.clock = MonotonicClock()
    fake_run.server.faults.clear()
    fake_run.start_delay = 0.0
    fake_run.start_gate = None
    fake_run.template_shows_overrides = True
    fake_logging.server.faults.clear()
    fake_run.simulator.shutdown(timeout=30)


@pytest.fixture
def gcp_config(gcp_settings: dict[str, object]):
    from runvoy_gcp.config import GcpConfig

    return GcpConfig.model_validate(gcp_settings)


@pytest.fixture
def provider(gcp_config):
    from runvoy_gcp.provider import create_provider

    prov = create_provider(gcp_config, None)
    prov.clients.storage.create_bucket(prov.clients.bucket_name)
    yield prov
    prov.close()


@pytest.fixture(autouse=True)
def _isolated(runvoy_home: Path) -> Path:
    """Every test gets its own RUNVOY_HOME (the kit's fixture, registered by its pytest plugin)."""
    return runvoy_home
