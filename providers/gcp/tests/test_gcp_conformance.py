"""The core's conformance suites against the gcp provider: Cloud Run and Cloud Logging fakes driven by the
cloud simulator, fake-gcs-server for the store and the lock register."""

from __future__ import annotations

import pytest

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


class TestGcpCompute(ComputeConformance):
    poll_interval = 0.02
    max_wait = 60.0  # bounds a hang only: waits return as soon as the state is reached
    stop_margin = 20.0  # room for a loaded machine, below the 30 s grace a force stop must beat
    log_wait = 30.0
    image = "python:3.12-slim"

    def unknown_ref(self) -> str:
        return "projects/p/locations/us-central1/jobs/runvoy-nope/executions/runvoy-nope-xxxxx"


class TestGcpLogs(LogsConformance):
    poll_interval = 0.02
    max_wait = 60.0  # bounds a hang only: waits return as soon as the state is reached
    log_wait = 30.0
    image = "python:3.12-slim"


class TestGcpStore(StoreConformance):
    @pytest.fixture
    def store(self, provider):
        return provider.store


class TestGcpDocuments(DocumentsConformance):
    provider_name = "gcp"

    @pytest.fixture
    def documents(self, provider):
        return provider.store


class TestGcpLockRegister(LockRegisterConformance):
    @pytest.fixture
    def register(self, provider):
        return provider.locks


class TestGcpPackaging(PackagingConformance):
    provider_name = "gcp"
    entry_point_module = "runvoy_gcp.plugin"
    forbidden_modules = ["google", "googleapiclient", "grpc", "proto", "requests", "boto3", "azure"]


class TestGcpContract(ContractConformance):
    pass


class TestGcpRunner(RunnerConformance):
    @pytest.fixture
    def runvoy_args(self, gcp_settings, provider):  # type: ignore[no-untyped-def]
        return "gcp", dict(gcp_settings)  # `provider` created the bucket


class TestGcpCost(CostConformance):
    provider_name = "gcp"
    # Cloud Run jobs, tier 1: 1 vCPU, 512 MiB for an hour = $0.0648 + $0.0036, a hundred times
    examples = [
        CostExample(cpu="1", memory="512MiB", seconds=3600, runs=100, region="us-central1", total="6.84")
    ]
