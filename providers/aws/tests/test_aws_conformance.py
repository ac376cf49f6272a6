"""The core's conformance suites against the aws provider (moto + the cloud simulator)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_test_tools import config_dict

from runvoy_core.testing.conformance.compute import ComputeConformance
from runvoy_core.testing.conformance.contract import ContractConformance
from runvoy_core.testing.conformance.cost import CostConformance, CostExample
from runvoy_core.testing.conformance.documents import DocumentsConformance
from runvoy_core.testing.conformance.locks_register import LockRegisterConformance
from runvoy_core.testing.conformance.logs import LogsConformance
from runvoy_core.testing.conformance.packaging import PackagingConformance
from runvoy_core.testing.conformance.runner import RunnerConformance
from runvoy_core.testing.conformance.store import StoreConformance


@pytest.fixture
def conformance_provider(moto, sim):  # type: ignore[no-untyped-def]
    from runvoy_aws.config import AwsConfig
    from runvoy_aws.provider import create_provider

    # a fixed 2 s stop timeout: Fargate's kill is the StopTask SIGKILL after stopTimeout
    config = AwsConfig.model_validate(config_dict(moto, stop_timeout=2))
    made = create_provider(config, None)
    made.compute.start_retry_delay = 0.01
    made.setup(dry_run=False)
    yield made
    made.close()


class TestAwsCompute(ComputeConformance):
    max_wait = 60.0  # bounds a hang only: waits return as soon as the state is reached
    stop_margin = 20.0  # room for a loaded machine, below the 30 s grace a force stop must beat

    @pytest.fixture
    def provider(self, conformance_provider: Any) -> Any:
        return conformance_provider

    def unknown_ref(self) -> str:
        return "arn:aws:ecs:us-east-1:123456789012:task/runvoy/00000000000000000000000000000000"

    def test_output_lines_reach_the_logs_in_order_with_their_stream(self, provider: Any) -> None:
        """ECS's awslogs driver writes stdout and stderr into one CloudWatch stream without saying which is
        which: all lines arrive, reported as stdout (a documented limit of awslogs, not of runvoy)."""
        _, ref = self.start(provider, "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3")
        self.wait_ended(provider, ref)
        events = self.wait_logs(provider, ref, 5)
        assert sorted(e.message for e in events) == ["err1", "err2", "out1", "out2", "out3"]
        assert [e.message for e in events if e.message.startswith("out")] == ["out1", "out2", "out3"]
        assert {e.stream for e in events} == {"stdout"}
        assert all(e.timestamp.tzinfo is not None for e in events)


class TestAwsLogs(LogsConformance):
    max_wait = 60.0  # bounds a hang only: waits return as soon as the state is reached

    @pytest.fixture
    def provider(self, conformance_provider: Any) -> Any:
        return conformance_provider

    def unknown_log_ref(self) -> str:
        return "arn:aws:ecs:us-east-1:123456789012:task/runvoy/00000000000000000000000000000000"

    def test_blank_lines_and_utf8_survive(self, provider: Any) -> None:
        """CloudWatch refuses empty messages and the awslogs driver drops blank lines; everything else,
        UTF-8 and a last line without a newline included, arrives intact."""
        _, ref = self.start(provider, "printf 'a\\n\\nb\\n'; echo 'héllo ✓'; printf 'no newline'")
        self.wait_ended(provider, ref)
        events = self.wait_logs(provider, ref, 4)
        assert [e.message for e in events] == ["a", "b", "héllo ✓", "no newline"]


class TestAwsStore(StoreConformance):
    @pytest.fixture
    def store(self, data_provider: Any) -> Any:
        return data_provider.store


class TestAwsDocuments(DocumentsConformance):
    provider_name = "aws"

    @pytest.fixture
    def documents(self, data_provider: Any) -> Any:
        return data_provider.store


class TestAwsLockRegister(LockRegisterConformance):
    @pytest.fixture
    def register(self, data_provider: Any) -> Any:
        return data_provider.locks


class TestAwsPackaging(PackagingConformance):
    provider_name = "aws"
    entry_point_module = "runvoy_aws.plugin"
    forbidden_modules = ["boto3", "botocore", "s3transfer"]


class TestAwsContract(ContractConformance):
    @pytest.fixture
    def provider(self, conformance_provider: Any) -> Any:
        return conformance_provider


class TestAwsRunner(RunnerConformance):
    @pytest.fixture
    def runvoy_args(self, moto, sim):  # type: ignore[no-untyped-def]
        from runvoy_core.api import Runvoy

        config = config_dict(moto)
        with Runvoy(provider="aws", **config) as setup:
            setup.provider.setup(dry_run=False)
        return "aws", config


class TestAwsCost(CostConformance):
    provider_name = "aws"
    # the Fargate pricing page: 5 tasks a day for 30 days, 1 vCPU, 2 GB, 10 minutes: $1.01 + $0.22
    examples = [CostExample(cpu="1", memory="2GiB", seconds=600, runs=150, region="us-east-1", total="1.23")]

    @pytest.fixture
    def provider(self, conformance_provider: Any) -> Any:
        return conformance_provider
