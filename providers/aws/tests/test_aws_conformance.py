"""The core's conformance suites against the aws provider (moto + the cloud simulator)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import config_dict

from runvoy_core.testing.conformance.compute import ComputeConformance
from runvoy_core.testing.conformance.support import ProviderWaits


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
    max_wait = 15.0
    stop_margin = 6.0

    @pytest.fixture
    def provider(self, conformance_provider: Any) -> Any:
        return conformance_provider

    def unknown_ref(self) -> str:
        return "arn:aws:ecs:us-east-1:123456789012:task/runvoy/00000000000000000000000000000000"

    def test_output_lines_reach_the_logs_in_order_with_their_stream(self, provider: Any) -> None:
        """The awslogs driver writes stdout and stderr into one CloudWatch stream without saying which is
        which: the lines arrive in order, all reported as stdout (a documented limit of ECS's awslogs)."""
        _, ref = self.start(provider, "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3")
        self.wait_ended(provider, ref)
        events = self.wait_logs(provider, ref, 5)
        assert sorted(e.message for e in events) == ["err1", "err2", "out1", "out2", "out3"]
        assert [e.message for e in events if e.message.startswith("out")] == ["out1", "out2", "out3"]
        assert all(e.timestamp.tzinfo is not None for e in events)


assert issubclass(TestAwsCompute, ProviderWaits)
