"""The contract suite: a provider declares, in its ``ProviderSpec``, exactly the optional features it
implements (``runvoy_core.ports.optional``) — no fewer, or the core never uses them; no more, or the core
would call what is not there.

    class TestAwsContract(ContractConformance):
        @pytest.fixture
        def provider(self, conformance_provider): return conformance_provider
"""

from __future__ import annotations

from typing import Any

from runvoy_core.ports import ComputePort, LockRegister, LogsPort, StorePort
from runvoy_core.ports.optional import OPTIONAL_FEATURES, implemented_features
from runvoy_core.testing.conformance.support import capabilities_of


class ContractConformance:
    def test_declared_optional_features_are_the_implemented_ones(self, provider: Any) -> None:
        declared = capabilities_of(provider) & set(OPTIONAL_FEATURES)
        implemented = implemented_features(provider)
        assert declared - implemented == set(), (
            f"declared but not implemented: {sorted(declared - implemented)}"
        )
        assert implemented - declared == set(), (
            f"implemented but not declared: {sorted(implemented - declared)}"
        )

    def test_the_ports_have_the_required_methods(self, provider: Any) -> None:
        assert isinstance(provider.compute, ComputePort)
        assert isinstance(provider.logs, LogsPort)
        assert provider.store is None or isinstance(provider.store, StorePort)
        assert provider.locks is None or isinstance(provider.locks, LockRegister)
