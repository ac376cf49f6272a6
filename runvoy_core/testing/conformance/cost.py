"""The cost suite: a provider's declared price source (``ProviderSpec.pricing``) loads, covers its default
region, gives the provider's documented examples to the cent, and its compute accepts exactly the sizes the
declaration lists (one table for `runvoy run` and `runvoy cost estimate`).

    class TestAcmeCost(CostConformance):
        provider_name = "acme"
        examples = [CostExample(cpu="1", memory="2GiB", seconds=3600, runs=100, region="moon-1", total="4.32")]

        @pytest.fixture
        def provider(self, acme_provider): return acme_provider
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from runvoy_core.errors import UsageError


@dataclass(frozen=True)
class CostExample:
    """One worked example from the provider's pricing page."""

    cpu: str
    memory: str
    seconds: float
    total: str
    """What ``runs`` such runs cost in all, to the cent."""
    runs: int = 1
    region: str | None = None
    architecture: str = "x86_64"
    spot: bool = False


class CostConformance:
    provider_name: ClassVar[str] = ""
    examples: ClassVar[list[CostExample]] = []

    def _source(self) -> Any:
        from runvoy_core.cost.source import PriceSource, load_price_sources

        source = load_price_sources().get(self.provider_name)
        assert isinstance(source, PriceSource), f"{self.provider_name!r} declares no price source in its spec"
        return source

    def _rule(self) -> Any:
        from runvoy_core.cost.rules import rule_of

        return rule_of(self._source())

    def test_the_price_source_loads_and_covers_the_default_region(self) -> None:
        from runvoy_core.cost.catalog import load_catalog

        rule = self._rule()
        catalog = load_catalog()
        assert rule.default_region in catalog.regions(self.provider_name)
        for dimension in ("vcpu", "memory"):
            assert catalog.find(self.provider_name, rule.default_region, "x86_64", "on-demand", dimension)

    def test_the_documented_examples(self) -> None:
        from runvoy_core.cost.calculator import estimate
        from runvoy_core.cost.pricing import to_cents
        from runvoy_core.models import Resources

        assert self.examples, "give at least one worked example from the provider's pricing page"
        for example in self.examples:
            resources = Resources.model_validate(
                {
                    "cpu": example.cpu,
                    "memory": example.memory,
                    "architecture": example.architecture,
                    "spot": example.spot,
                }
            )
            cost = estimate(self.provider_name, resources, example.seconds, region=example.region)
            assert to_cents(cost.total * example.runs) == Decimal(example.total), (example, cost.total)

    def test_compute_accepts_exactly_the_declared_sizes(self, provider: Any) -> None:
        from runvoy_core.models import ExecutionRequest, Resources

        rule = self._rule()
        if not rule.sizes:
            pytest.skip("the provider declares no size table: any size is accepted")
        for row in rule.sizes:
            cpu = row.cpu if row.cpu is not None else row.cpu_min
            memory = row.memory_values[0] if row.memory_values else max(row.memory_min, 1)
            request = ExecutionRequest(
                command="true", resources=Resources.model_validate({"cpu": cpu, "memory": f"{memory}MiB"})
            )
            provider.compute.validate(request)  # a declared size runs
            too_much = (row.memory_values[-1] if row.memory_values else row.memory_max) + 1
            if rule.size_problem(cpu, too_much) is None:
                continue
            try:
                over = ExecutionRequest(
                    command="true",
                    resources=Resources.model_validate({"cpu": cpu, "memory": f"{too_much}MiB"}),
                )
            except ValueError:
                continue  # beyond what runvoy accepts anywhere (docs/inputs.md): refused before the provider
            with pytest.raises(UsageError):
                provider.compute.validate(over)  # and what the table refuses is refused
