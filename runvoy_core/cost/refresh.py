"""``runvoy cost refresh``: parse the providers' price sources, compare with the catalog in use, refuse
implausible changes, and write the result to the user cache (``<home>/cost``). The shipped snapshot stays
the fallback: deleting the cache directory returns to it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from runvoy_core.cost.catalog import (
    CACHE_META,
    CACHE_PRICES,
    Catalog,
    PriceRow,
    cache_dir,
    load_catalog,
    write_rows,
)
from runvoy_core.cost.rules import load_rules
from runvoy_core.cost.source import PriceSource, load_price_sources
from runvoy_core.errors import RunvoyError, UsageError

MAX_RELATIVE_CHANGE = Decimal("0.5")
"""A price moving by more than 50 % in one refresh is more likely a parsing or unit error than a price
change; it is refused unless --force."""


class ImplausiblePrices(RunvoyError):
    """A price refresh would move a price by more than half; it was refused."""

    default_hint = "check the source; if the new prices are right, run again with --force"


class UnknownPriceSource(UsageError):
    """The file given to cost refresh --from-file is not a price list runvoy can read."""

    default_hint = (
        "pass a saved response of the AWS Price List, GCP Cloud Billing Catalog or Azure Retail Prices API"
    )


def refreshable() -> dict[str, PriceSource]:
    """The providers whose prices ``runvoy cost refresh`` can read (their source has a parser)."""
    return {name: source for name, source in load_price_sources().items() if source.parse is not None}


def _parsers() -> dict[str, Callable[[dict[str, Any], str], list[PriceRow]]]:
    return {name: source.parse for name, source in refreshable().items() if source.parse is not None}


def detect_provider(payload: dict[str, Any]) -> str:
    """Which provider's price API a recorded response came from, asked of each provider's source."""
    for name, source in sorted(refreshable().items()):
        if source.detects is not None and source.detects(payload):
            return name
    known = ", ".join(sorted(refreshable())) or "none installed"
    raise UnknownPriceSource(f"not a response of a known price API (providers with a price source: {known})")


def parse_payload(
    payload: dict[str, Any], *, provider: str | None = None, retrieved: str | None = None
) -> list[PriceRow]:
    provider = provider or detect_provider(payload)
    retrieved = retrieved or datetime.now(UTC).date().isoformat()
    return _parsers()[provider](payload, retrieved)


def read_payload_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise UnknownPriceSource(f"{path} is not a JSON price response: {exc}") from None
    except RecursionError:
        raise UnknownPriceSource(f"{path} is nested too deeply to be a price response") from None
    if not isinstance(data, dict):
        raise UnknownPriceSource(f"{path}: expected a JSON object")
    return data


def fetch_payloads(provider: str, regions: list[str]) -> list[dict[str, Any]]:  # pragma: no cover - network
    source = refreshable().get(provider)
    if source is None or source.fetch is None:
        raise UsageError(
            f"provider {provider!r} has no price API runvoy can fetch",
            hint="refresh from a saved response with --from-file",
        )
    try:
        return source.fetch(regions)
    except RunvoyError:
        raise
    except Exception as exc:
        raise RunvoyError(
            f"could not fetch {provider} prices: {type(exc).__name__}: {exc}",
            hint="check the network, or refresh from a saved response with --from-file",
        ) from None


@dataclass
class Change:
    row: PriceRow
    old: PriceRow | None

    @property
    def relative(self) -> Decimal | None:
        """New / old - 1 of the per-second prices (None for a new row or a zero old price)."""
        if self.old is None or self.old.price_per_second == 0:
            return None
        return self.row.price_per_second / self.old.price_per_second - 1

    @property
    def implausible(self) -> bool:
        relative = self.relative
        return relative is not None and abs(relative) > MAX_RELATIVE_CHANGE

    def as_dict(self) -> dict[str, Any]:
        relative = self.relative
        return {
            "provider": self.row.provider,
            "region": self.row.region,
            "architecture": self.row.architecture,
            "capacity": self.row.capacity,
            "dimension": self.row.dimension,
            "unit": self.row.unit,
            "old": format(self.old.price, "f") if self.old else None,
            "old_unit": self.old.unit if self.old else None,
            "new": format(self.row.price, "f"),
            "change_percent": None if relative is None else str((relative * 100).quantize(Decimal("0.1"))),
            "implausible": self.implausible,
        }


@dataclass
class RefreshPlan:
    current: Catalog
    rows: list[PriceRow]
    providers: list[str]
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def implausible(self) -> list[Change]:
        return [c for c in self.changes if c.implausible]


def plan_refresh(current: Catalog, new_rows: Iterable[PriceRow]) -> RefreshPlan:
    """Compare parsed rows with the catalog in use (same provider/region/os/arch/capacity/dimension)."""
    rows = list({row.key: row for row in new_rows}.values())
    plan = RefreshPlan(current=current, rows=rows, providers=sorted({r.provider for r in rows}))
    index = {row.key: row for row in current.rows}
    for row in rows:
        old = index.get(row.key)
        if old is not None and old.price_per_second == row.price_per_second:
            plan.unchanged += 1
            continue
        plan.changes.append(Change(row=row, old=old))
    return plan


def apply_refresh(plan: RefreshPlan, *, home: Path | str | None = None, force: bool = False) -> Catalog:
    """Write the merged catalog to the user cache. Rows the sources did not return are kept as they were."""
    if not plan.rows:
        raise UsageError(
            "the price source returned no usable rows",
            hint="check the --provider and the response (Fargate, Cloud Run jobs or Container Instances prices)",
        )
    bad = plan.implausible
    if bad and not force:
        sample = "; ".join(
            f"{c.row.provider} {c.row.region} {c.row.architecture} {c.row.capacity} {c.row.dimension}: "
            f"{format(c.old.price, 'f') if c.old else '-'} -> {format(c.row.price, 'f')} {c.row.unit}"
            for c in bad[:3]
        )
        raise ImplausiblePrices(
            f"{len(bad)} price(s) changed by more than {int(MAX_RELATIVE_CHANGE * 100)} %: {sample}",
            changes=[c.as_dict() for c in bad],
        )
    merged = {row.key: row for row in plan.current.rows}
    merged.update({row.key: row for row in plan.rows})
    rows = list(merged.values())
    directory = cache_dir(home)
    write_rows(directory / CACHE_PRICES, rows)
    today = datetime.now(UTC).date().isoformat()
    # prices nobody can refresh (the local provider's zeros) never make the catalog look old
    refreshed_kinds = set(refreshable())
    cloud_dates = [r.retrieved_date for r in rows if r.provider in refreshed_kinds]
    meta = {
        "version": f"{load_rules().version}+refresh.{today.replace('-', '')}",
        "effective_date": max(
            (r.effective_date for r in rows if r.provider in refreshed_kinds), default=today
        ),
        # the oldest figure sets the age: refreshing one cloud does not make the others' prices fresh
        "retrieved_date": min(cloud_dates, default=today),
        "refreshed_at": datetime.now(UTC).isoformat(),
        "refreshed_providers": plan.providers,
        "based_on": plan.current.version,
    }
    tmp = directory / (CACHE_META + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    tmp.replace(directory / CACHE_META)
    return load_catalog(home)


def reset_cache(home: Path | str | None = None) -> bool:
    """Delete the user cache (back to the shipped snapshot); True when there was one."""
    directory = cache_dir(home)
    found = False
    for name in (CACHE_PRICES, CACHE_META):
        path = directory / name
        if path.exists():
            path.unlink()
            found = True
    return found
