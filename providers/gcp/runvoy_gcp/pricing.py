"""GCP Cloud Billing Catalog API: ``services/152E-C115-5142/skus`` (Cloud Run). SKUs such as
"Jobs CPU in us-central1" (usageUnit ``s``) and "Jobs Memory in us-central1" (``GiBy.s``);
a price is ``units + nanos / 1e9`` of the highest tier (the first tiers are the monthly free tier)."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from importlib.resources import files
from typing import Any

from runvoy_core.cost.catalog import PriceRow
from runvoy_core.cost.source import PriceSource

SERVICE = "Cloud Run jobs"
SERVICE_ID = "152E-C115-5142"
SOURCE = f"Cloud Billing Catalog API services/{SERVICE_ID}/skus"
SKUS_URL = (
    "https://cloudbilling.googleapis.com/v1/services/" + SERVICE_ID + "/skus?key={key}&pageToken={token}"
)
_DESCRIPTION = re.compile(r"^Jobs (CPU|Memory) in ([a-z]+-[a-z]+\d+)$", re.IGNORECASE)
_UNITS = {"s": ("vCPU-second", "GiB-second"), "h": ("vCPU-hour", "GiB-hour")}


def _money(unit_price: dict[str, Any]) -> Decimal:
    units = Decimal(str(unit_price.get("units", "0") or "0"))
    nanos = Decimal(int(unit_price.get("nanos", 0) or 0)) / Decimal(1_000_000_000)
    return (units + nanos).normalize()


def parse(payload: dict[str, Any], retrieved: str) -> list[PriceRow]:
    rows: list[PriceRow] = []
    for sku in payload.get("skus", []):
        match = _DESCRIPTION.match(str(sku.get("description", "")).strip())
        if not match:
            continue
        dimension = "vcpu" if match.group(1).lower() == "cpu" else "memory"
        regions = sku.get("serviceRegions") or [match.group(2)]
        for info in sku.get("pricingInfo", [])[:1]:
            expression = info.get("pricingExpression", {})
            usage_unit = str(expression.get("usageUnit", ""))
            base = usage_unit.replace("GiBy.", "")
            if base not in _UNITS:
                continue
            tiers = sorted(
                expression.get("tieredRates", []), key=lambda t: float(t.get("startUsageAmount", 0))
            )
            if not tiers:
                continue
            price = _money(tiers[-1].get("unitPrice", {}))
            currency = tiers[-1].get("unitPrice", {}).get("currencyCode", "USD")
            unit = _UNITS[base][0 if dimension == "vcpu" else 1]
            effective = str(info.get("effectiveTime", retrieved))[:10]
            for region in regions:
                rows.append(
                    PriceRow(
                        provider="gcp",
                        service=SERVICE,
                        region=region,
                        os="linux",
                        architecture="x86_64",
                        capacity="on-demand",
                        dimension=dimension,
                        unit=unit,
                        price=price,
                        currency=currency,
                        effective_date=effective,
                        retrieved_date=retrieved,
                        source=f"{SOURCE} {sku.get('skuId', '')}".strip(),
                    )
                )
    return rows


def fetch(regions: list[str], timeout: float = 60.0) -> list[dict[str, Any]]:  # pragma: no cover - network
    """All Cloud Run SKU pages (the API has no region filter). Needs an API key in RUNVOY_GCP_PRICING_API_KEY."""
    from urllib.parse import quote

    from runvoy_core.cost.http import get_json
    from runvoy_core.errors import ConfigError

    key = os.environ.get("RUNVOY_GCP_PRICING_API_KEY") or os.environ.get("GOOGLE_API_KEY")
    if not key:
        raise ConfigError(
            "the Cloud Billing Catalog API needs an API key",
            hint="set RUNVOY_GCP_PRICING_API_KEY, or refresh from a saved response with --from-file",
        )
    pages, token = [], ""
    while True:
        page = get_json(SKUS_URL.format(key=quote(key), token=quote(token)), timeout=timeout)
        pages.append(page)
        token = page.get("nextPageToken") or ""
        if not token:
            return pages


def detects(payload: dict[str, Any]) -> bool:
    """A Cloud Billing Catalog ``services.skus.list`` answer."""
    return "skus" in payload


# the provider's sizes, billing rules and prices, declared through its spec (ProviderSpec.pricing)
PRICING = PriceSource(
    provider="gcp",
    rules=files("runvoy_gcp") / "data" / "billing.toml",
    prices=files("runvoy_gcp") / "data" / "prices.csv",
    detects=detects,
    parse=parse,
    fetch=fetch,
)
