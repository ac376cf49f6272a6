"""Properties of the billing rules over many sizes and durations (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.cost.pricing import price_run
from runvoy_core.cost.rules import load_rules

CLOUDS = st.sampled_from(["aws", "gcp", "azure"])
CPUS = st.decimals(min_value=Decimal("0.05"), max_value=Decimal("16"), places=2)
MEMORY = st.integers(min_value=64, max_value=128 * 1024)
SECONDS = st.decimals(min_value=Decimal(0), max_value=Decimal(100_000), places=3)


@settings(max_examples=300, deadline=None)
@given(provider=CLOUDS, cpu=CPUS, memory=MEMORY)
def test_rounded_size_is_valid_and_not_smaller(provider: str, cpu: Decimal, memory: int) -> None:
    rule = load_rules().get(provider)
    assert rule is not None
    rounded = rule.round_up_size(cpu, memory)
    if rounded is None:
        return
    assert rule.size_problem(*rounded) is None
    assert rounded[0] >= cpu and rounded[1] >= memory
    if rule.size_problem(cpu, memory) is None:
        assert rounded == (cpu, memory), "a valid size is kept as it is"


@settings(max_examples=300, deadline=None)
@given(provider=CLOUDS, a=SECONDS, b=SECONDS)
def test_billed_time_covers_the_run_and_is_monotonic(provider: str, a: Decimal, b: Decimal) -> None:
    rule = load_rules().get(provider)
    assert rule is not None
    low, high = sorted((a, b))
    assert rule.billed_seconds(low) >= low
    assert rule.billed_seconds(low) <= rule.billed_seconds(high)
    assert rule.billed_seconds(low) - low < max(rule.rounding_step_seconds, rule.minimum_seconds) + 1


@settings(max_examples=200, deadline=None)
@given(provider=CLOUDS, cpu=CPUS, memory=MEMORY, seconds=SECONDS)
def test_equivalent_price_is_never_negative_and_adds_up(
    provider: str, cpu: Decimal, memory: int, seconds: Decimal
) -> None:
    rule = load_rules().get(provider)
    assert rule is not None
    if rule.round_up_size(cpu, memory) is None:
        return
    breakdown = price_run(provider, cpu, memory, seconds, equivalent=True)
    assert breakdown.total >= 0
    assert breakdown.total == sum((line.amount for line in breakdown.lines), Decimal(0))
    assert breakdown.billed_seconds == rule.billed_seconds(seconds)
