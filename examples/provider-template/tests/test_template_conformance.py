"""The whole provider kit against the template: what every runvoy provider must pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from runvoy_core.testing.conformance import (
    ComputeConformance,
    ContractConformance,
    LogsConformance,
    PackagingConformance,
    RunnerConformance,
)


class TestTemplateCompute(ComputeConformance):
    # the template's "service" is this machine: what a command leaves behind is the service's business, as a
    # container's processes are a cloud's (the local provider, which is a real product, ends them all)
    host_processes = False

    def unknown_ref(self) -> str:
        return "0000000000000000"


class TestTemplateLogs(LogsConformance):
    pass


class TestTemplateContract(ContractConformance):
    pass


class TestTemplateRunner(RunnerConformance):
    max_wait = 60.0

    @pytest.fixture
    def runvoy_args(self, runvoy_home: Path) -> tuple[str, dict[str, object]]:
        return "template", {}


class TestTemplatePackaging(PackagingConformance):
    provider_name = "template"
    entry_point_module = "runvoy_template.plugin"
    forbidden_modules = ["boto3", "botocore", "google", "azure"]
