"""Every billing rule of every provider: billed time, sizes, architectures, spot, storage."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runvoy_core.cost.pricing import PricingError, price_run
from runvoy_core.cost.rules import BillingRule, load_rules

D = Decimal


def rule(provider: str) -> BillingRule:
    found = load_rules().get(provider)
    assert found is not None
    return found


# -- billed time ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "billed"),
    [("0", "60"), ("1", "60"), ("59.9", "60"), ("60", "60"), ("60.2", "61"), ("61", "61"), ("600", "600")],
)
def test_fargate_per_second_with_one_minute_minimum(seconds: str, billed: str) -> None:
    assert rule("aws").billed_seconds(D(seconds)) == D(billed)


@pytest.mark.parametrize(
    ("seconds", "billed"),
    [("0", "0"), ("0.01", "0.1"), ("0.1", "0.1"), ("1.01", "1.1"), ("4", "4"), ("59.95", "60.0")],
)
def test_cloud_run_rounds_up_to_100_ms_without_minimum(seconds: str, billed: str) -> None:
    assert rule("gcp").billed_seconds(D(seconds)) == D(billed)


@pytest.mark.parametrize(
    ("seconds", "billed"), [("0", "0"), ("0.2", "1"), ("1.2", "2"), ("5", "5"), ("150", "150")]
)
def test_aci_per_second_without_minimum(seconds: str, billed: str) -> None:
    assert rule("azure").billed_seconds(D(seconds)) == D(billed)


def test_negative_duration_bills_as_zero() -> None:
    assert rule("gcp").billed_seconds(D("-3")) == 0
    assert rule("aws").billed_seconds(D("-3")) == 60


def test_fargate_minimum_applies_to_price() -> None:
    short = price_run("aws", D("0.25"), 512, D(5))
    minute = price_run("aws", D("0.25"), 512, D(60))
    assert short.billed_seconds == 60
    assert short.total == minute.total > 0


def test_cloud_run_100ms_step_applies_to_price() -> None:
    a = price_run("gcp", D(1), 1024, D("1.01"))
    b = price_run("gcp", D(1), 1024, D("1.1"))
    assert a.total == b.total == D("0.0000198") + D("0.0000022")


def test_local_costs_nothing() -> None:
    breakdown = price_run("local", D(8), 65536, D(36000), region="local")
    assert breakdown.total == 0
    assert breakdown.currency == "USD"


def test_meter_descriptions_are_recorded() -> None:
    assert "pull" in rule("aws").meter_start
    assert "pull" in rule("azure").meter_start
    assert rule("aws").free_storage_gib == 20
    assert rule("gcp").free_tier and "240,000" in rule("gcp").free_tier


# -- sizes ---------------------------------------------------------------------------------------------------

FARGATE_VALID = [
    ("0.25", 512),
    ("0.25", 1024),
    ("0.25", 2048),
    ("0.5", 1024),
    ("0.5", 4096),
    ("1", 2048),
    ("1", 8192),
    ("2", 4096),
    ("2", 16384),
    ("4", 8192),
    ("4", 30720),
    ("8", 16384),
    ("8", 20480),
    ("8", 61440),
    ("16", 32768),
    ("16", 40960),
    ("16", 122880),
]
FARGATE_INVALID = [
    ("0.25", 3072),
    ("0.25", 768),
    ("0.5", 512),
    ("0.5", 1536),
    ("1", 1024),
    ("1", 9216),
    ("3", 8192),
    ("4", 31744),
    ("8", 18432),
    ("16", 36864),
    ("0.1", 512),
]


@pytest.mark.parametrize(("cpu", "mib"), FARGATE_VALID)
def test_fargate_valid_sizes(cpu: str, mib: int) -> None:
    assert rule("aws").size_problem(D(cpu), mib) is None


@pytest.mark.parametrize(("cpu", "mib"), FARGATE_INVALID)
def test_fargate_invalid_sizes(cpu: str, mib: int) -> None:
    assert rule("aws").size_problem(D(cpu), mib) is not None


@pytest.mark.parametrize(
    ("cpu", "mib"), [("1", 512), ("1", 4096), ("2", 8192), ("4", 2048), ("6", 24576), ("8", 32768)]
)
def test_cloud_run_valid_sizes(cpu: str, mib: int) -> None:
    assert rule("gcp").size_problem(D(cpu), mib) is None


@pytest.mark.parametrize(
    ("cpu", "mib"), [("0.5", 512), ("3", 4096), ("1", 5120), ("4", 1024), ("8", 36864), ("1", 256)]
)
def test_cloud_run_invalid_sizes(cpu: str, mib: int) -> None:
    assert rule("gcp").size_problem(D(cpu), mib) is not None


@pytest.mark.parametrize(
    ("cpu", "mib"), [("0.1", 512), ("0.25", 1024), ("0.5", 1536), ("1", 1024), ("2.5", 3000), ("4", 16384)]
)
def test_aci_valid_sizes(cpu: str, mib: int) -> None:
    assert rule("azure").size_problem(D(cpu), mib) is None


@pytest.mark.parametrize(
    ("cpu", "mib"), [("0.255", 1024), ("0.05", 1024), ("5", 1024), ("1", 17408), ("1", 64)]
)
def test_aci_invalid_sizes(cpu: str, mib: int) -> None:
    assert rule("azure").size_problem(D(cpu), mib) is not None


def test_aci_bills_memory_rounded_up_to_a_tenth_of_a_gb() -> None:
    assert rule("azure").billed_memory_gib(1000) == D("1.0")
    assert rule("azure").billed_memory_gib(1100) == D("1.1")
    assert rule("azure").billed_memory_gib(1024) == D("1")


@pytest.mark.parametrize(
    ("provider", "cpu", "mib", "expected"),
    [
        ("aws", "1", 1024, ("1", 2048)),
        ("aws", "0.3", 512, ("0.5", 1024)),
        ("aws", "4", 31000, ("8", 32768)),
        ("aws", "8", 17000, ("8", 20480)),
        ("gcp", "0.25", 256, ("1", 512)),
        ("gcp", "3", 2048, ("4", 2048)),
        ("gcp", "1", 6144, ("2", 6144)),
        ("azure", "0.25", 512, ("0.25", 512)),
        ("azure", "0.255", 512, ("0.26", 512)),
    ],
)
def test_round_up_to_nearest_valid_size(provider: str, cpu: str, mib: int, expected: tuple[str, int]) -> None:
    rounded = rule(provider).round_up_size(D(cpu), mib)
    assert rounded == (D(expected[0]), expected[1])


def test_too_large_has_no_valid_size() -> None:
    assert rule("aws").round_up_size(D(32), 1024) is None
    assert rule("gcp").round_up_size(D(1), 65536) is None


def test_invalid_size_error_lists_valid_sizes() -> None:
    with pytest.raises(PricingError) as info:
        price_run("aws", D(1), 1024, D(60))
    assert "1 vCPU: 2GiB-8GiB" in info.value.message
    assert info.value.valid_sizes and "0.25 vCPU: 512MiB/1GiB/2GiB" in info.value.valid_sizes


# -- architecture, spot, regions, storage ---------------------------------------------------------------------


def test_arm_only_where_offered() -> None:
    assert price_run("aws", D(1), 2048, D(60), architecture="arm64").architecture == "arm64"
    for provider in ("gcp", "azure"):
        with pytest.raises(PricingError, match="runs only x86_64"):
            price_run(provider, D(1), 2048, D(60), architecture="arm64")
    with pytest.raises(PricingError, match="no on-demand arm64 price for aws in region 'eu-central-1'"):
        price_run("aws", D(1), 2048, D(60), architecture="arm64", region="eu-central-1")


def test_spot_rules() -> None:
    with pytest.raises(PricingError, match="gcp has no spot capacity"):
        price_run("gcp", D(1), 2048, D(60), spot=True)
    assert price_run("azure", D(1), 2048, D(60), spot=True).capacity == "spot"
    with pytest.raises(PricingError, match="no spot"):
        price_run("aws", D(1), 2048, D(60), spot=True, region="eu-west-1")


def test_unknown_region_names_known_ones() -> None:
    with pytest.raises(PricingError) as info:
        price_run("aws", D(1), 2048, D(60), region="mars-north-1")
    assert "us-east-1" in info.value.message


def test_regions_price_differently() -> None:
    us = price_run("aws", D(1), 2048, D(3600), region="us-east-1")
    tokyo = price_run("aws", D(1), 2048, D(3600), region="ap-northeast-1")
    assert tokyo.total == D("0.05056") + 2 * D("0.00553")
    assert tokyo.total > us.total
    sydney = price_run("gcp", D(1), 1024, D(1), region="australia-southeast1")
    assert sydney.total == D("0.0000216") + D("0.0000024")


def test_storage_limits_and_free_storage() -> None:
    assert price_run("aws", D(1), 2048, D(60), storage_gib=20).amount("storage") == 0
    assert price_run("aws", D(1), 2048, D(60), storage_gib=21).amount("storage") > 0
    assert price_run("gcp", D(1), 2048, D(60), storage_gib=100).amount("storage") == 0
    assert price_run("azure", D(1), 2048, D(60), storage_gib=100).amount("storage") == 0
