"""The core's conformance suites against the gcp provider: Cloud Run and Cloud Logging fakes driven by the
cloud simulator, fake-gcs-server for the store and the lock register."""

from __future__ import annotations

import pytest

from runvoy_core.testing.conformance import (
    ComputeConformance,
    LockRegisterConformance,
    LogsConformance,
    PackagingConformance,
    StoreConformance,
)


class TestGcpCompute(ComputeConformance):
    poll_interval = 0.02
    max_wait = 10.0
    stop_margin = 3.0
    log_wait = 2.0
    image = "python:3.12-slim"

    def unknown_ref(self) -> str:
        return "projects/p/locations/us-central1/jobs/runvoy-nope/executions/runvoy-nope-xxxxx"


class TestGcpLogs(LogsConformance):
    poll_interval = 0.02
    max_wait = 10.0
    log_wait = 2.0
    image = "python:3.12-slim"


class TestGcpStore(StoreConformance):
    @pytest.fixture
    def store(self, provider):
        return provider.store


class TestGcpLockRegister(LockRegisterConformance):
    @pytest.fixture
    def register(self, provider):
        return provider.locks


class TestGcpPackaging(PackagingConformance):
    provider_name = "gcp"
    entry_point_module = "runvoy_gcp.plugin"
    forbidden_modules = ["google", "googleapiclient", "grpc", "proto", "requests", "boto3", "azure"]
