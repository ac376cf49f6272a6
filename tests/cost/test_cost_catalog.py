"""The shipped catalog (each provider's price source), the user cache and its fallback, staleness, catalog_info."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from runvoy_core.cost.catalog import (
    COLUMNS,
    cache_dir,
    catalog_info,
    load_catalog,
    write_rows,
)
from runvoy_core.cost.rules import load_rules
from runvoy_core.cost.source import load_price_sources
from runvoy_core.models import Resources

PRICING_MD_REGIONS = {
    "aws": ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "ap-south-1"],
    "gcp": ["us-central1", "australia-southeast1"],
    "azure": ["eastus", "germanywestcentral"],
}


def _shipped_raw() -> list[dict[str, str]]:
    raw: list[dict[str, str]] = []
    for name, source in load_price_sources().items():
        assert source.prices is not None, name
        with source.prices.open(newline="") as handle:
            reader = csv.DictReader(handle)
            assert tuple(reader.fieldnames or ()) == COLUMNS
            rows = list(reader)
        assert {row["provider"] for row in rows} == {name}, "a provider ships only its own prices"
        raw.extend(rows)
    return raw


def test_shipped_catalog_has_every_column_and_decimal_strings() -> None:
    raw = _shipped_raw()
    assert len(raw) > 50
    for row in raw:
        assert Decimal(row["price"]) >= 0
        assert "e" not in row["price"].lower(), "prices are plain decimal strings"
        assert row["source"] and row["currency"] == "USD"
        datetime.strptime(row["effective_date"], "%Y-%m-%d")
        datetime.strptime(row["retrieved_date"], "%Y-%m-%d")
    rows = load_catalog().rows
    keys = [r.key for r in rows]
    assert len(keys) == len(set(keys)), "one price per provider/region/os/arch/capacity/dimension"


def test_catalog_covers_the_reference_regions_and_more() -> None:
    catalog = load_catalog()
    for provider, regions in PRICING_MD_REGIONS.items():
        known = catalog.regions(provider)
        assert set(regions) <= set(known)
        assert len(known) > len(regions), f"{provider}: more regions than the reference"
    # every region has both a vCPU and a memory price for x86 on demand
    for provider in PRICING_MD_REGIONS:
        for region in catalog.regions(provider):
            for dimension in ("vcpu", "memory"):
                assert catalog.find(provider, region, "x86_64", "on-demand", dimension), (provider, region)


def test_every_provider_default_region_is_in_the_catalog() -> None:
    catalog = load_catalog()
    for name, rule in load_rules().providers.items():
        assert rule.default_region in catalog.regions(name)


def test_catalog_info_reports_dates_and_age() -> None:
    info = catalog_info()
    assert info["version"] == "2026.11.1"
    assert info["origin"] == "shipped"
    assert info["retrieved_date"] == "2026-11-01"
    assert info["effective_date"] == "2026-11-01"
    assert isinstance(info["age_days"], int)
    assert "us-east-1" in info["regions"]["aws"]
    assert "local" not in info["regions"]


def _write_cache(home: Path, retrieved: str, vcpu_price: str = "0.05") -> None:
    rows = load_catalog().rows
    changed = []
    for row in rows:
        if (
            row.provider == "aws"
            and row.region == "us-east-1"
            and row.dimension == "vcpu"
            and row.architecture == "x86_64"
        ):
            row = type(row)(**{**row.__dict__, "price": Decimal(vcpu_price), "retrieved_date": retrieved})
        changed.append(row)
    write_rows(cache_dir(home) / "prices.csv", changed)
    (cache_dir(home) / "catalog.json").write_text(
        json.dumps({"version": "test-cache", "retrieved_date": retrieved, "effective_date": retrieved})
    )


def test_user_cache_replaces_the_shipped_snapshot(runvoy_home: Path) -> None:
    today = datetime.now(UTC).date().isoformat()
    _write_cache(runvoy_home, today)
    catalog = load_catalog()
    assert catalog.origin == "cache" and catalog.version == "test-cache"
    assert catalog.find("aws", "us-east-1", "x86_64", "on-demand", "vcpu").price == Decimal("0.05")  # type: ignore[union-attr]
    from runvoy_core.cost.calculator import estimate

    assert estimate("aws", Resources.model_validate(dict(cpu=1, memory="2GiB")), 3600).vcpu == Decimal("0.05")
    assert catalog_info()["origin"] == "cache"
    assert catalog.staleness_warning() is None


def test_old_prices_warn(runvoy_home: Path) -> None:
    old = (datetime.now(UTC).date() - timedelta(days=120)).isoformat()
    _write_cache(runvoy_home, old)
    catalog = load_catalog()
    assert catalog.stale
    warning = catalog.staleness_warning()
    assert warning and "120 days" in warning and "runvoy cost refresh" in warning
    info = catalog_info()
    assert info["stale"] is True and info["warnings"]


def test_corrupt_cache_falls_back_to_shipped_with_a_warning(runvoy_home: Path) -> None:
    directory = cache_dir(runvoy_home)
    directory.mkdir(parents=True)
    (directory / "prices.csv").write_text("provider,price\naws,abc\n")
    (directory / "catalog.json").write_text("{}")
    catalog = load_catalog()
    assert catalog.origin == "shipped"
    assert catalog.warnings and "ignoring the price cache" in catalog.warnings[0]
