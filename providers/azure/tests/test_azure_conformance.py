"""The core conformance suites against the azure provider: Azurite for Table and Blob storage, the fake ARM
for Container Instances, commands really run by the CloudSimulator."""

from __future__ import annotations

from typing import Any

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


class AzureWaits:
    poll_interval = 0.03
    max_wait = 60.0  # bounds a hang only: waits return as soon as the state is reached
    stop_margin = 20.0  # room for a loaded machine, below the 30 s grace a force stop must beat
    log_wait = 30.0
    image = "mcr.microsoft.com/cbl-mariner/busybox:2.0"

    @pytest.fixture
    def provider(self, make_provider: Any) -> Any:
        return make_provider()

    def unknown_ref(self) -> str:
        return "rg-unknown/runvoy-000000000000"


class TestAzureCompute(AzureWaits, ComputeConformance):
    def test_output_lines_reach_the_logs_in_order_with_their_stream(self, provider: Any) -> None:
        """ACI's list_logs merges stdout and stderr with no stream marker: every line reads as stdout.
        What holds: all lines arrive, each stream's lines in their order, with aware timestamps."""
        _, ref = self.start(provider, "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3")
        self.wait_ended(provider, ref)
        events = self.wait_logs(provider, ref, 5)
        messages = [e.message for e in events]
        assert [m for m in messages if m.startswith("out")] == ["out1", "out2", "out3"], events
        assert [m for m in messages if m.startswith("err")] == ["err1", "err2"], events
        assert {e.stream for e in events} == {"stdout"}
        assert all(e.timestamp.tzinfo is not None for e in events)


class TestAzureLogs(AzureWaits, LogsConformance):
    pass


class TestAzureStore(StoreConformance):
    @pytest.fixture
    def store(self, make_provider: Any) -> Any:
        return make_provider().store


class TestAzureDocuments(DocumentsConformance):
    provider_name = "azure"

    @pytest.fixture
    def documents(self, make_provider: Any) -> Any:
        return make_provider().store


class TestAzureLockRegister(LockRegisterConformance):
    @pytest.fixture
    def register(self, make_provider: Any) -> Any:
        return make_provider().locks


class TestAzurePackaging(PackagingConformance):
    provider_name = "azure"
    entry_point_module = "runvoy_azure.plugin"
    forbidden_modules = ["azure", "boto3", "botocore", "google"]


class TestAzureContract(AzureWaits, ContractConformance):
    pass


class TestAzureRunner(RunnerConformance):
    @pytest.fixture
    def runvoy_args(self, new_section: Any) -> tuple[str, dict[str, Any]]:
        from runvoy_core.api import Runvoy

        section = new_section()
        with Runvoy(provider="azure", **section) as client:
            client.provider.setup(dry_run=False)
        return "azure", section


class TestAzureCost(AzureWaits, CostConformance):
    provider_name = "azure"
    # the ACI pricing page: 50 groups a day for 30 days, 1 vCPU / 2 GB, 150 s each = $2.53 + $0.56
    examples = [CostExample(cpu="1", memory="2GiB", seconds=150, runs=1500, region="eastus", total="3.09")]
