"""AWS Price List: ``pricing.get_products(ServiceCode="AmazonECS")`` pages (``PriceList`` is a list of JSON
strings) or the bulk offer file ``offers/v1.0/aws/AmazonECS/current/{region}/index.json`` (no credentials)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from typing import Any

from runvoy_core.cost.catalog import PriceRow
from runvoy_core.cost.source import PriceSource

SERVICE = "ECS Fargate"
SOURCE = "AWS Price List API (AmazonECS)"
BULK_URL = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonECS/current/{region}/index.json"
# usagetype suffix (after the region prefix, e.g. "USE1-") -> (architecture, dimension)
_USAGE = {
    "Fargate-vCPU-Hours:perCPU": ("x86_64", "vcpu"),
    "Fargate-GB-Hours": ("x86_64", "memory"),
    "Fargate-ARM-vCPU-Hours:perCPU": ("arm64", "vcpu"),
    "Fargate-ARM-GB-Hours": ("arm64", "memory"),
    "Fargate-EphemeralStorage-GB-Hours": ("*", "storage"),
}


def _documents(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "PriceList" in payload:
        for item in payload["PriceList"]:
            yield json.loads(item) if isinstance(item, str) else item
        return
    products: dict[str, Any] = payload.get("products", {})
    on_demand: dict[str, Any] = payload.get("terms", {}).get("OnDemand", {})
    for sku, product in products.items():
        yield {"product": product, "terms": {"OnDemand": on_demand.get(sku, {})}}


def _usage_kind(usagetype: str) -> tuple[str, str] | None:
    suffix = usagetype.split("-", 1)[1] if "-" in usagetype else usagetype
    if suffix.startswith("Fargate-"):
        return _USAGE.get(suffix)
    # us-east-1 has no region prefix ("Fargate-vCPU-Hours:perCPU")
    return _USAGE.get(usagetype)


def parse(payload: dict[str, Any], retrieved: str) -> list[PriceRow]:
    """Linux on-demand Fargate prices (vCPU-hour, GB-hour, ephemeral storage GB-hour) per region."""
    rows: list[PriceRow] = []
    for document in _documents(payload):
        attributes = document.get("product", {}).get("attributes", {})
        kind = _usage_kind(str(attributes.get("usagetype", "")))
        region = attributes.get("regionCode")
        if kind is None or not region or "windows" in str(attributes.get("operatingSystem", "")).lower():
            continue
        for term in document.get("terms", {}).get("OnDemand", {}).values():
            effective = str(term.get("effectiveDate", retrieved))[:10]
            for dimension in term.get("priceDimensions", {}).values():
                price_text = dimension.get("pricePerUnit", {}).get("USD")
                try:
                    price = Decimal(str(price_text))
                except InvalidOperation:
                    continue
                architecture, what = kind
                unit = "vCPU-hour" if what == "vcpu" else "GiB-hour"
                for arch in ("x86_64", "arm64") if architecture == "*" else (architecture,):
                    rows.append(
                        PriceRow(
                            provider="aws",
                            service=SERVICE,
                            region=region,
                            os="linux",
                            architecture=arch,
                            capacity="on-demand",
                            dimension=what,
                            unit=unit,
                            price=price.normalize() if price else Decimal(0),
                            currency="USD",
                            effective_date=effective,
                            retrieved_date=retrieved,
                            source=f"{SOURCE} {attributes.get('usagetype')}",
                        )
                    )
    return rows


def fetch(regions: list[str], timeout: float = 60.0) -> list[dict[str, Any]]:  # pragma: no cover - network
    """get_products through boto3 when installed (needs credentials), else the public bulk offer files."""
    try:
        import boto3
    except ImportError:
        boto3 = None
    payloads: list[dict[str, Any]] = []
    if boto3 is not None:
        client = boto3.client("pricing", region_name="us-east-1")
        for region in regions:
            paginator = client.get_paginator("get_products")
            pages = paginator.paginate(
                ServiceCode="AmazonECS",
                Filters=[{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
            )
            payloads.extend({"PriceList": page["PriceList"]} for page in pages)
        return payloads
    from runvoy_core.cost.http import get_json

    return [get_json(BULK_URL.format(region=region), timeout=timeout) for region in regions]


def detects(payload: dict[str, Any]) -> bool:
    """A Price List answer (get_products pages) or a bulk offer file."""
    return "PriceList" in payload or ("products" in payload and "terms" in payload)


# the provider's sizes, billing rules and prices, declared through its spec (ProviderSpec.pricing)
PRICING = PriceSource(
    provider="aws",
    rules=files("runvoy_aws") / "data" / "billing.toml",
    prices=files("runvoy_aws") / "data" / "prices.csv",
    detects=detects,
    parse=parse,
    fetch=fetch,
)
