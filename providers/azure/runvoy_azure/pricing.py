"""Azure Retail Prices API (no auth): ``api/retail/prices?$filter=serviceName eq 'Container Instances'``.
Items carry meterName ("Standard vCPU Duration", "Standard Spot Memory Duration"...), unitPrice,
unitOfMeasure ("1 Hour", "1 GB Hour", "1 Second"...), armRegionName and effectiveStartDate; pages chain
through NextPageLink."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from runvoy_core.cost.catalog import PriceRow
from runvoy_core.cost.source import PriceSource

SERVICE = "Container Instances"
SOURCE = "Azure Retail Prices API (Container Instances)"
API_URL = "https://prices.azure.com/api/retail/prices?$filter="
_METER = re.compile(r"^Standard (Spot )?(vCPU|Memory) Duration$")
_UNIT = re.compile(r"^(\d+)\s+(GB\s+)?(Hour|Hours|Second|Seconds)$", re.IGNORECASE)


def parse(payload: dict[str, Any], retrieved: str) -> list[PriceRow]:
    rows: list[PriceRow] = []
    for item in payload.get("Items", []):
        if item.get("serviceName") != SERVICE or item.get("productName") != SERVICE:
            continue  # GPU and confidential-container products are priced apart
        if item.get("type", "Consumption") != "Consumption":
            continue
        meter = _METER.match(str(item.get("meterName", "")))
        unit = _UNIT.match(str(item.get("unitOfMeasure", "")).strip())
        if not meter or not unit:
            continue
        try:
            price = Decimal(str(item.get("unitPrice", item.get("retailPrice"))))
        except InvalidOperation:
            continue
        per = Decimal(unit.group(1))
        dimension = "vcpu" if meter.group(2) == "vCPU" else "memory"
        time_unit = "hour" if unit.group(3).lower().startswith("hour") else "second"
        rows.append(
            PriceRow(
                provider="azure",
                service=SERVICE,
                region=str(item.get("armRegionName", "")),
                os="linux",
                architecture="x86_64",
                capacity="spot" if meter.group(1) else "on-demand",
                dimension=dimension,
                unit=f"{'vCPU' if dimension == 'vcpu' else 'GiB'}-{time_unit}",
                price=(price / per).normalize() if price else Decimal(0),
                currency=str(item.get("currencyCode", "USD")),
                effective_date=str(item.get("effectiveStartDate", retrieved))[:10],
                retrieved_date=retrieved,
                source=f"{SOURCE} meter {item.get('meterId', item.get('meterName'))}",
            )
        )
    return [row for row in rows if row.region]


def fetch(regions: list[str], timeout: float = 60.0) -> list[dict[str, Any]]:  # pragma: no cover - network
    from runvoy_core.cost.http import get_json

    pages: list[dict[str, Any]] = []
    for region in regions:
        query = f"serviceName eq '{SERVICE}' and armRegionName eq '{region}' and priceType eq 'Consumption'"
        url: str | None = API_URL + quote(query)
        while url:
            page = get_json(url, timeout=timeout)
            pages.append(page)
            url = page.get("NextPageLink")
    return pages


def detects(payload: dict[str, Any]) -> bool:
    """An Azure Retail Prices API answer."""
    return "Items" in payload


# the provider's sizes, billing rules and prices, declared through its spec (ProviderSpec.pricing)
PRICING = PriceSource(
    provider="azure",
    rules=files("runvoy_azure") / "data" / "billing.toml",
    prices=files("runvoy_azure") / "data" / "prices.csv",
    detects=detects,
    parse=parse,
    fetch=fetch,
)
