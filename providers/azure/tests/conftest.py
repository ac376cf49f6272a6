"""Fixtures for the azure provider tests: Azurite (Table + Blob) and the fake ARM server, both on free
ports of 127.0.0.1 for the whole session, and a provider wired to them through the real Azure clients.

Azurite comes from ``npm ci --prefix tools/azurite`` (pinned in tools/azurite/package-lock.json); without
Node or that install, the tests that need storage are skipped with the command to run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.testing.packages import load_package
from runvoy_core.testing.simulator import CloudSimulator

_FAKES = "runvoy_azure_testfakes"


load_package(Path(__file__).parent / "fakes", _FAKES)

from runvoy_azure_testfakes.aci_server import FakeAci  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
# RUNVOY_AZURITE_BIN: another folder holding azurite-blob and azurite-table (e.g. a global npm install)
AZURITE_BIN = Path(
    os.environ.get("RUNVOY_AZURITE_BIN") or REPO / "tools" / "azurite" / "node_modules" / ".bin"
)
INSTALL = "npm ci --prefix tools/azurite"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft)
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"azurite did not listen on {port} within {timeout}s")


class Azurite:
    def __init__(self, blob_port: int, table_port: int, procs: list[subprocess.Popen[bytes]]) -> None:
        self.blob_port, self.table_port, self.procs = blob_port, table_port, procs

    @property
    def connection_string(self) -> str:
        return self.connection_string_via(
            f"http://127.0.0.1:{self.blob_port}", f"http://127.0.0.1:{self.table_port}"
        )

    def connection_string_via(self, blob_url: str, table_url: str) -> str:
        """The connection string with the Blob and Table endpoints at other addresses (fault proxies)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={blob_url}/{ACCOUNT};TableEndpoint={table_url}/{ACCOUNT};"
        )


def azurite_missing() -> str | None:
    if shutil.which("node") is None:
        return f"Node.js is not installed: install Node 20, then run: {INSTALL}"
    for name in ("azurite-blob", "azurite-table"):
        if not (AZURITE_BIN / name).exists():
            return f"Azurite is not installed: run: {INSTALL}"
    return None


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    missing = azurite_missing()
    if missing:
        pytest.skip(missing)
    workdir = tmp_path_factory.mktemp("azurite")
    common = ["--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose"]
    blob_port, table_port = _free_port(), _free_port()
    procs = [
        subprocess.Popen(
            [
                str(AZURITE_BIN / "azurite-blob"),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(blob_port),
                *common,
            ],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ),
        subprocess.Popen(
            [
                str(AZURITE_BIN / "azurite-table"),
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(table_port),
                *common,
            ],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        ),
    ]
    try:
        _wait_port(blob_port, procs[0])
        _wait_port(table_port, procs[1])
        yield Azurite(blob_port, table_port, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


@pytest.fixture(scope="session")
def simulator() -> Iterator[CloudSimulator]:
    sim = CloudSimulator()
    yield sim
    sim.shutdown()


@pytest.fixture(scope="session")
def fake_aci_server(simulator: CloudSimulator) -> Iterator[FakeAci]:
    fake = FakeAci(simulator).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_aci(fake_aci_server: FakeAci) -> Iterator[FakeAci]:
    yield fake_aci_server
    fake_aci_server.reset()


def azure_section(azurite: Azurite, fake: FakeAci, **overrides: Any) -> dict[str, Any]:
    """A providers.azure section pointing at Azurite and the fake ARM, with names unique to one test."""
    unique = uuid.uuid4().hex[:10]
    section: dict[str, Any] = {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": f"rg-{unique}",
        "location": "eastus",
        "arm_endpoint": fake.url,
        "credential": "fake",
        "storage_connection_string": azurite.connection_string,
        "executions_table": f"ex{unique}",
        "locks_table": f"lk{unique}",
        "logs_container": f"logs-{unique}",
        "polling_interval": 0,
        "retry_backoff": 0.05,
        "retry_total": 3,
        "poll_interval_min": 0.05,
        # the suite reads far faster than ARM's quota allows: test_azure_quotas.py keeps to it
        "rate_limits": {"arm.reads": 10_000.0},
        # only a hung fake hits these: a loaded machine must not turn a slow answer into a fault
        "request_timeout": 30,
        "create_timeout": 30,
    }
    section.update(overrides)
    return section


@pytest.fixture
def make_provider(azurite: Azurite, fake_aci: FakeAci) -> Iterator[Any]:
    from runvoy_azure.provider import create_provider

    made: list[Any] = []

    def make(**overrides: Any) -> Any:
        provider = create_provider(azure_section(azurite, fake_aci, **overrides))
        provider.setup(dry_run=False)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider: Any) -> Any:
    return make_provider()


@pytest.fixture
def make_client(azurite: Azurite, fake_aci: FakeAci) -> Iterator[Any]:
    """Runvoy clients (the Python API: runner + azure provider) wired to Azurite and the fake ARM."""
    from runvoy_core.api import Runvoy

    made: list[Any] = []

    def make(**overrides: Any) -> Any:
        client = Runvoy(provider="azure", **azure_section(azurite, fake_aci, **overrides))
        client.provider.setup(dry_run=False)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def rv(make_client: Any) -> Any:
    return make_client()


@pytest.fixture
def new_section(azurite: Azurite, fake_aci: FakeAci) -> Any:
    """A factory of providers.azure sections (unique names; nothing created yet)."""
    return lambda **overrides: azure_section(azurite, fake_aci, **overrides)


@pytest.fixture(scope="session")
def key_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from runvoy_azure_testfakes.key_vault import FakeKeyVault

    vault = FakeKeyVault(tmp_path_factory.mktemp("vault")).start()
    yield vault
    vault.stop()


@pytest.fixture(autouse=True)
def _isolated(runvoy_home: Path) -> Path:
    """Every test gets its own RUNVOY_HOME (the kit's fixture, registered by its pytest plugin)."""
    return runvoy_home
