"""The local provider against every conformance suite (real processes, real SQLite under a tmp RUNVOY_HOME)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runvoy_core.config import load_settings
from runvoy_core.models import ExecutionRequest
from runvoy_core.providers.local.config import LocalConfig
from runvoy_core.providers.local.provider import LocalProvider, create_provider
from runvoy_core.providers.local.register import LocalLockRegister
from runvoy_core.providers.local.store import LocalStore
from runvoy_core.testing.conformance import (
    ComputeConformance,
    ContractConformance,
    CostConformance,
    CostExample,
    DocumentsConformance,
    LockRegisterConformance,
    LogsConformance,
    PackagingConformance,
    RunnerConformance,
    StoreConformance,
)


@pytest.fixture
def provider(runvoy_home: Path) -> Iterator[LocalProvider]:
    local = create_provider(LocalConfig(), load_settings())
    assert local.home == runvoy_home
    yield local
    for state in local.compute.list_active():
        local.compute.stop(state.ref, 0, force=True)
    local.close()


class TestLocalCompute(ComputeConformance):
    poll_interval = 0.02
    max_wait = 60.0  # bounds a hang only: waits return as soon as the state is reached
    stop_margin = 20.0  # room for a loaded machine, below the 30 s grace a force stop must beat
    log_wait = 30.0

    def impossible_request(self) -> ExecutionRequest:
        # the local provider ignores cpu and memory; an image without a container runtime it cannot run
        return ExecutionRequest(command="true", image="alpine:3.20")


class TestLocalLogs(LogsConformance):
    poll_interval = 0.02
    max_wait = 60.0  # bounds a hang only: waits return as soon as the state is reached
    log_wait = 30.0


class TestLocalStore(StoreConformance):
    @pytest.fixture
    def store(self, runvoy_home: Path) -> Iterator[LocalStore]:
        store = LocalStore(runvoy_home)
        yield store
        store.close()


class TestLocalDocuments(DocumentsConformance):
    provider_name = "local"

    @pytest.fixture
    def documents(self, runvoy_home: Path) -> Iterator[LocalStore]:
        store = LocalStore(runvoy_home)
        yield store
        store.close()


class TestLocalLockRegister(LockRegisterConformance):
    @pytest.fixture
    def register(self, runvoy_home: Path) -> Iterator[LocalLockRegister]:
        register = LocalLockRegister(runvoy_home)
        yield register
        register.close()


class TestLocalPackaging(PackagingConformance):
    provider_name = "local"
    entry_point_module = "runvoy_core.providers.local.plugin"
    forbidden_modules = ["boto3", "botocore", "google", "azure"]


class TestLocalContract(ContractConformance):
    pass


class TestLocalRunner(RunnerConformance):
    max_wait = 60.0

    @pytest.fixture
    def runvoy_args(self, runvoy_home: Path) -> tuple[str, dict[str, object]]:
        return "local", {}


class TestLocalCost(CostConformance):
    provider_name = "local"
    examples = [CostExample(cpu="2", memory="4GiB", seconds=3600, runs=1000, total="0.00")]
