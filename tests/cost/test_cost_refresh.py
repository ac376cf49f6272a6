"""Refresh parsers on recorded API responses, plausibility checks, and the user cache."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from runvoy_aws import pricing as aws
from runvoy_azure import pricing as azure
from runvoy_gcp import pricing as gcp

from runvoy_core.cost import refresh
from runvoy_core.cost.catalog import load_catalog
from runvoy_core.errors import UsageError

FIXTURES = Path(__file__).parent / "fixtures"
D = Decimal


def load(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((FIXTURES / name).read_text())


def by_key(rows: list) -> dict:  # type: ignore[type-arg]
    return {(r.region, r.architecture, r.capacity, r.dimension): r for r in rows}


def test_aws_get_products_parser() -> None:
    rows = aws.parse(load("aws_get_products_us-east-1.json"), "2026-11-27")
    got = by_key(rows)
    assert got[("us-east-1", "x86_64", "on-demand", "vcpu")].price == D("0.04048")
    assert got[("us-east-1", "x86_64", "on-demand", "memory")].price == D("0.004445")
    assert got[("us-east-1", "arm64", "on-demand", "vcpu")].price == D("0.03238")
    assert got[("us-east-1", "arm64", "on-demand", "memory")].price == D("0.00356")
    assert got[("us-east-1", "x86_64", "on-demand", "storage")].price == D("0.000111")
    assert got[("us-east-1", "arm64", "on-demand", "storage")].price == D("0.000111")
    assert len(rows) == 6, "Windows and non-Fargate products are skipped"
    row = got[("us-east-1", "x86_64", "on-demand", "vcpu")]
    assert (
        row.unit == "vCPU-hour" and row.effective_date == "2026-11-01" and row.retrieved_date == "2026-11-27"
    )
    assert "USE1-Fargate-vCPU-Hours:perCPU" in row.source


def test_aws_bulk_offer_parser() -> None:
    rows = aws.parse(load("aws_bulk_offer_eu-west-1.json"), "2026-11-27")
    got = by_key(rows)
    assert got[("eu-west-1", "x86_64", "on-demand", "vcpu")].price == D("0.04048")
    assert got[("eu-west-1", "x86_64", "on-demand", "memory")].price == D("0.004445")


def test_gcp_skus_parser_takes_the_paid_tier() -> None:
    rows = gcp.parse(load("gcp_cloud_run_skus.json"), "2026-11-27")
    got = by_key(rows)
    assert got[("us-central1", "x86_64", "on-demand", "vcpu")].price == D("0.000018")
    assert got[("us-central1", "x86_64", "on-demand", "memory")].price == D("0.000002")
    assert got[("australia-southeast1", "x86_64", "on-demand", "vcpu")].price == D("0.0000216")
    assert got[("us-central1", "x86_64", "on-demand", "memory")].unit == "GiB-second"
    assert len(rows) == 6, "service and request SKUs are skipped"


def test_azure_retail_parser() -> None:
    rows = azure.parse(load("azure_retail_eastus.json"), "2026-11-27")
    got = by_key(rows)
    assert got[("eastus", "x86_64", "on-demand", "vcpu")].price == D("0.0405")
    assert got[("eastus", "x86_64", "on-demand", "memory")].price == D("0.00445")
    assert got[("eastus", "x86_64", "spot", "vcpu")].price == D("0.01215")
    assert got[("eastus", "x86_64", "spot", "memory")].price == D("0.001335")
    assert got[("eastus", "x86_64", "on-demand", "vcpu")].effective_date == "2021-06-08"
    assert len(rows) == 4, "Windows software and GPU meters are skipped"


def test_detect_provider() -> None:
    assert refresh.detect_provider(load("aws_get_products_us-east-1.json")) == "aws"
    assert refresh.detect_provider(load("aws_bulk_offer_eu-west-1.json")) == "aws"
    assert refresh.detect_provider(load("gcp_cloud_run_skus.json")) == "gcp"
    assert refresh.detect_provider(load("azure_retail_eastus.json")) == "azure"
    with pytest.raises(UsageError):
        refresh.detect_provider({"hello": 1})


def test_same_prices_change_nothing_but_still_write_a_dated_cache(runvoy_home: Path) -> None:
    current = load_catalog()
    plan = refresh.plan_refresh(current, refresh.parse_payload(load("azure_retail_eastus.json")))
    assert plan.changes == [] and plan.unchanged == 4
    catalog = refresh.apply_refresh(plan)
    assert catalog.origin == "cache"
    assert catalog.version.startswith("2026.11.1+refresh.")
    # other providers were not refreshed: their (older) retrieval date still sets the age
    assert catalog.retrieved_date == "2026-11-01"
    assert len(catalog.rows) == len(current.rows)


def test_new_region_is_added_and_used(runvoy_home: Path) -> None:
    from runvoy_core.cost.calculator import estimate
    from runvoy_core.models import Resources

    plan = refresh.plan_refresh(load_catalog(), refresh.parse_payload(load("azure_retail_westeurope.json")))
    assert [c.old for c in plan.changes] == [None, None]
    refresh.apply_refresh(plan)
    assert "westeurope" in load_catalog().regions("azure")
    assert estimate(
        "azure", Resources.model_validate(dict(cpu=1, memory="1GiB")), 3600, region="westeurope"
    ).total == D("0.0494")


def test_changed_price_within_limit_is_accepted(runvoy_home: Path) -> None:
    rows = refresh.parse_payload(load("gcp_cloud_run_skus.json"))
    plan = refresh.plan_refresh(load_catalog(), rows)
    new_region = [c for c in plan.changes if c.row.region == "europe-west2"]
    assert new_region and all(c.old is None for c in new_region)
    refresh.apply_refresh(plan)
    assert "europe-west2" in load_catalog().regions("gcp")


def test_implausible_change_is_refused_unless_forced(runvoy_home: Path) -> None:
    plan = refresh.plan_refresh(
        load_catalog(), refresh.parse_payload(load("azure_retail_eastus_implausible.json"))
    )
    assert len(plan.implausible) == 1
    change = plan.implausible[0].as_dict()
    assert change["old"] == "0.0405" and change["new"] == "0.405" and change["change_percent"] == "900.0"
    with pytest.raises(refresh.ImplausiblePrices, match=r"1 price\(s\) changed by more than 50 %"):
        refresh.apply_refresh(plan)
    assert load_catalog().origin == "shipped", "nothing written"
    refresh.apply_refresh(plan, force=True)
    assert load_catalog().find("azure", "eastus", "x86_64", "on-demand", "vcpu").price == D("0.405")  # type: ignore[union-attr]
    assert refresh.reset_cache() is True
    assert load_catalog().origin == "shipped"


def test_unit_changes_are_compared_per_second(runvoy_home: Path) -> None:
    payload = load("azure_retail_eastus.json")
    for item in payload["Items"]:
        if item["meterName"] == "Standard vCPU Duration":
            item["unitOfMeasure"], item["unitPrice"] = "1 Second", 0.00001125
    plan = refresh.plan_refresh(load_catalog(), refresh.parse_payload(payload))
    assert plan.implausible == []
    assert plan.changes == []


def test_empty_source_is_an_error(runvoy_home: Path) -> None:
    plan = refresh.plan_refresh(load_catalog(), [])
    with pytest.raises(UsageError, match="no usable rows"):
        refresh.apply_refresh(plan)
