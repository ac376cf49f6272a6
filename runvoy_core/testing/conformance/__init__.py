"""Conformance suites every provider runs. Subclass one in a provider's tests (the class name must start
with ``Test`` for pytest to collect it) and provide the fixture it names::

    class TestAwsCompute(ComputeConformance):
        max_wait = 60.0

        @pytest.fixture
        def provider(self, aws_provider):
            return aws_provider

Suites: ComputeConformance (fixture ``provider``), LogsConformance (``provider``), ContractConformance
(``provider``: declared capabilities are the implemented optional features), StoreConformance
(``store``), LockRegisterConformance (``register``), DocumentsConformance (``documents``: a DocumentStore),
PackagingConformance (class attributes only).
Each module imports pytest, so import the one you need, not this package's contents, from runtime code.
"""

from runvoy_core.testing.conformance.compute import ComputeConformance
from runvoy_core.testing.conformance.contract import ContractConformance
from runvoy_core.testing.conformance.cost import CostConformance, CostExample
from runvoy_core.testing.conformance.documents import DocumentsConformance
from runvoy_core.testing.conformance.locks_register import LockRegisterConformance
from runvoy_core.testing.conformance.logs import LogsConformance
from runvoy_core.testing.conformance.packaging import PackagingConformance
from runvoy_core.testing.conformance.runner import RunnerConformance
from runvoy_core.testing.conformance.store import StoreConformance

__all__ = [
    "ComputeConformance",
    "ContractConformance",
    "CostConformance",
    "CostExample",
    "DocumentsConformance",
    "LockRegisterConformance",
    "LogsConformance",
    "PackagingConformance",
    "RunnerConformance",
    "StoreConformance",
]
