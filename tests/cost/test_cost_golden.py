"""The providers' own worked examples, to the cent (figures from reference/pricing.md and the pricing pages)."""

from __future__ import annotations

from decimal import Decimal

from runvoy_core.cost.calculator import estimate
from runvoy_core.cost.pricing import price_run, to_cents
from runvoy_core.cost.rules import load_rules
from runvoy_core.models import Resources

D = Decimal


def test_fargate_pricing_page_example_us_east_1() -> None:
    # 5 tasks/day x 30 days, 1 vCPU, 2 GB, 30 GB ephemeral storage, 10 minutes each (x86, Linux):
    # CPU $1.01 + memory $0.22 + storage $0.03 = $1.26
    runs = 5 * 30
    one = estimate(
        "aws", Resources.model_validate(dict(cpu=1, memory="2GiB", storage_gib=30)), 600, region="us-east-1"
    )
    assert to_cents(one.vcpu * runs) == D("1.01")
    assert to_cents(one.memory * runs) == D("0.22")
    assert to_cents(one.storage * runs) == D("0.03")
    assert to_cents(one.total * runs) == D("1.26")
    assert one.billed_seconds == 600
    assert one.estimated is True
    assert {line.dimension for line in one.lines} == {"vcpu", "memory", "storage"}


def test_fargate_storage_is_billed_only_above_the_free_20_gib() -> None:
    breakdown = price_run("aws", D(1), 2048, D(600), storage_gib=30)
    storage = next(line for line in breakdown.lines if line.dimension == "storage")
    # 10 GiB over 1/6 hour
    assert storage.quantity == D("1.6666666667")
    assert storage.amount == D("0.0001850000")


def test_cloud_run_gib_second_unit_256_mib_for_4_seconds_is_1_gib_second() -> None:
    rule = load_rules().get("gcp")
    assert rule is not None
    assert rule.billed_memory_gib(256) * rule.billed_seconds(D(4)) == D(1)


def test_cloud_run_tier1_job_one_vcpu_512_mib_for_one_hour() -> None:
    # 3600 vCPU-s x $0.000018 + 1800 GiB-s x $0.000002 = $0.0648 + $0.0036
    cost = estimate("gcp", Resources.model_validate(dict(cpu=1, memory="512MiB")), 3600, region="us-central1")
    assert cost.vcpu == D("0.0648")
    assert cost.memory == D("0.0036")
    assert cost.total == D("0.0684")


def test_aci_per_second_prices_eastus() -> None:
    # $0.0405 per vCPU-hour = $0.00001125 per vCPU-second; $0.00445 per GB-hour ~ $0.000001236 per GB-second
    one_second = estimate("azure", Resources.model_validate(dict(cpu=1, memory="1GiB")), 1, region="eastus")
    assert one_second.vcpu == D("0.00001125")
    assert one_second.memory.quantize(D("0.000000001")) == D("0.000001236")


def test_aci_monthly_example_eastus() -> None:
    # 50 container groups a day for 30 days, 1 vCPU / 2 GB, 150 s each:
    # vCPU 225,000 s x $0.00001125 = $2.53; memory 450,000 GB-s x $0.00445/3600 = $0.56; total $3.09
    runs = 50 * 30
    one = estimate("azure", Resources.model_validate(dict(cpu=1, memory="2GiB")), 150, region="eastus")
    assert to_cents(one.vcpu * runs) == D("2.53")
    assert to_cents(one.memory * runs) == D("0.56")
    assert to_cents(one.total * runs) == D("3.09")


def test_aci_spot_eastus() -> None:
    cost = estimate(
        "azure", Resources.model_validate(dict(cpu=1, memory="1GiB", spot=True)), 3600, region="eastus"
    )
    assert cost.vcpu == D("0.01215")
    assert cost.memory == D("0.001335")


def test_fargate_arm_and_spot_us_east_1() -> None:
    arm = estimate("aws", Resources.model_validate(dict(cpu=1, memory="2GiB", architecture="arm64")), 3600)
    assert arm.vcpu == D("0.03238")
    assert arm.memory == D("0.00712")
    spot = estimate("aws", Resources.model_validate(dict(cpu=1, memory="2GiB", spot=True)), 3600)
    assert spot.vcpu == D("0.01288871")
    assert spot.memory == D("0.00283054")
