"""The dated price catalog: one row per price (shipped by each provider, its ``PriceSource.prices``), optionally
replaced by a refreshed copy in the user cache (``<home>/cost/prices.csv`` + ``catalog.json``).

Standard library only and loaded lazily, so ``runvoy cost estimate`` stays fast.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runvoy_core.cost.rules import load_rules
from runvoy_core.cost.source import load_price_sources

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

CACHE_DIR_NAME = "cost"
CACHE_PRICES = "prices.csv"
CACHE_META = "catalog.json"
STALE_AFTER_DAYS = 90
COLUMNS = (
    "provider",
    "service",
    "region",
    "os",
    "architecture",
    "capacity",
    "dimension",
    "unit",
    "price",
    "currency",
    "effective_date",
    "retrieved_date",
    "source",
)
DIMENSIONS = ("vcpu", "memory", "storage")
CAPACITIES = ("on-demand", "spot")
# seconds in one unit of time of each price unit
UNIT_SECONDS = {"second": Decimal(1), "hour": Decimal(3600)}


class CatalogFormatError(ValueError):
    """A catalog file that cannot be used (missing column, bad decimal, unknown unit)."""


@dataclass(frozen=True)
class PriceRow:
    provider: str
    service: str
    region: str
    os: str
    architecture: str
    capacity: str
    dimension: str
    unit: str
    price: Decimal
    currency: str
    effective_date: str
    retrieved_date: str
    source: str

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        return (self.provider, self.region, self.os, self.architecture, self.capacity, self.dimension)

    @property
    def unit_seconds(self) -> Decimal:
        """``vCPU-hour`` -> 3600, ``GiB-second`` -> 1."""
        return UNIT_SECONDS[self.unit.rsplit("-", 1)[1]]

    @property
    def price_per_second(self) -> Decimal:
        return self.price / self.unit_seconds

    def as_csv(self) -> list[str]:
        return [str(getattr(self, c)) if c != "price" else format(self.price, "f") for c in COLUMNS]

    @classmethod
    def from_mapping(cls, data: dict[str, str], where: str) -> PriceRow:
        missing = [c for c in COLUMNS if not data.get(c)]
        if missing:
            raise CatalogFormatError(f"{where}: missing {', '.join(missing)}")
        try:
            price = Decimal(data["price"])
        except InvalidOperation:
            raise CatalogFormatError(f"{where}: price {data['price']!r} is not a decimal number") from None
        if not price.is_finite() or price < 0:
            raise CatalogFormatError(f"{where}: price {data['price']!r} must be a non-negative number")
        unit = data["unit"]
        if "-" not in unit or unit.rsplit("-", 1)[1] not in UNIT_SECONDS:
            raise CatalogFormatError(f"{where}: unit {unit!r} must end in -second or -hour")
        if data["dimension"] not in DIMENSIONS or data["capacity"] not in CAPACITIES:
            raise CatalogFormatError(f"{where}: dimension or capacity not one of {DIMENSIONS} / {CAPACITIES}")
        return cls(**{c: data[c] for c in COLUMNS if c != "price"}, price=price)


def read_rows(path: Path | Traversable) -> list[PriceRow]:
    with io.StringIO(path.read_text(encoding="utf-8"), newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if [c for c in COLUMNS if c not in header]:
            raise CatalogFormatError(f"{path}: header must contain {', '.join(COLUMNS)}")
        return [PriceRow.from_mapping(row, f"{path}:{n}") for n, row in enumerate(reader, start=2)]


def write_rows(path: Path, rows: list[PriceRow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in sorted(rows, key=lambda r: r.key):
            writer.writerow(row.as_csv())
    tmp.replace(path)


@dataclass
class Catalog:
    version: str
    effective_date: str
    retrieved_date: str
    origin: str  # "shipped" or "cache"
    path: Path | None  # None: shipped, each provider's rows in its own distribution
    rows: list[PriceRow]
    warnings: list[str] = field(default_factory=list)
    _index: dict[tuple[str, str, str, str, str, str], PriceRow] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {row.key: row for row in self.rows}

    def find(
        self, provider: str, region: str, architecture: str, capacity: str, dimension: str, os: str = "linux"
    ) -> PriceRow | None:
        return self._index.get((provider, region, os, architecture, capacity, dimension)) or self._index.get(
            (provider, region, "any", architecture, capacity, dimension)
        )

    def regions(self, provider: str) -> list[str]:
        return sorted({row.region for row in self.rows if row.provider == provider})

    def providers(self) -> list[str]:
        return sorted({row.provider for row in self.rows})

    @property
    def age_days(self) -> int | None:
        try:
            retrieved = date.fromisoformat(self.retrieved_date)
        except ValueError:
            return None
        return (datetime.now(UTC).date() - retrieved).days

    @property
    def stale(self) -> bool:
        age = self.age_days
        return age is not None and age > STALE_AFTER_DAYS

    def staleness_warning(self) -> str | None:
        if not self.stale:
            return None
        return (
            f"prices were retrieved {self.age_days} days ago ({self.retrieved_date}); "
            "refresh them with: runvoy cost refresh"
        )


def resolve_home(home: Path | str | None = None) -> Path:
    """RUNVOY_HOME (or the given home) without loading the settings machinery."""
    if home is not None:
        return Path(home)
    explicit = os.environ.get("RUNVOY_HOME")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("runvoy"))


def cache_dir(home: Path | str | None = None) -> Path:
    return resolve_home(home) / CACHE_DIR_NAME


def shipped_catalog() -> Catalog:
    """The rows every installed provider ships (a row naming another provider is left out, with a warning)."""
    book = load_rules()
    rows: list[PriceRow] = []
    warnings: list[str] = []
    for name, source in sorted(load_price_sources().items()):
        if source.prices is None:
            continue
        try:
            found = read_rows(source.prices)
        except (OSError, CatalogFormatError) as exc:
            warnings.append(f"provider {name!r} ships unreadable prices ({exc}); its runs cost 0")
            continue
        foreign = [row for row in found if row.provider != name]
        if foreign:
            warnings.append(
                f"provider {name!r} ships {len(foreign)} price row(s) of other providers; ignored"
            )
        rows.extend(row for row in found if row.provider == name)
    return Catalog(
        version=book.version,
        effective_date=book.effective_date,
        retrieved_date=book.retrieved_date,
        origin="shipped",
        path=None,
        rows=rows,
        warnings=warnings,
    )


_CACHE: dict[tuple[str, float], Catalog] = {}


def load_catalog(home: Path | str | None = None) -> Catalog:
    """The user cache when present and readable, else the shipped snapshot (with a warning saying why)."""
    directory = cache_dir(home)
    prices, meta = directory / CACHE_PRICES, directory / CACHE_META
    try:
        stamp = prices.stat().st_mtime
    except OSError:
        return _shipped()
    cached = _CACHE.get((str(prices), stamp))
    if cached is not None:
        return cached
    try:
        info: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
        catalog = Catalog(
            version=str(info["version"]),
            effective_date=str(info.get("effective_date", "")),
            retrieved_date=str(info["retrieved_date"]),
            origin="cache",
            path=prices,
            rows=read_rows(prices),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        fallback = shipped_catalog()
        fallback.warnings.append(f"ignoring the price cache {prices} ({exc}); using the shipped snapshot")
        return fallback
    _CACHE[(str(prices), stamp)] = catalog
    return catalog


_SHIPPED: list[Catalog] = []


def _shipped() -> Catalog:
    if not _SHIPPED:
        _SHIPPED.append(shipped_catalog())
    return _SHIPPED[0]


def catalog_info(home: Path | str | None = None) -> dict[str, Any]:
    """What ``runvoy providers`` and the docs show about the prices in use."""
    catalog = load_catalog(home)
    return {
        "version": catalog.version,
        "origin": catalog.origin,
        "path": str(catalog.path) if catalog.path else "shipped with each provider",
        "effective_date": catalog.effective_date,
        "retrieved_date": catalog.retrieved_date,
        "age_days": catalog.age_days,
        "stale": catalog.stale,
        "regions": {p: catalog.regions(p) for p in catalog.providers() if p != "local"},
        "warnings": [*catalog.warnings, *filter(None, [catalog.staleness_warning()])],
    }
