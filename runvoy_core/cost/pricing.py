"""Price one run: resources x billed seconds x catalog prices, with the provider's billing rules.

Standard library only (the fast path of ``runvoy cost estimate``); ``calculator`` wraps it in pydantic models.
Amounts keep ten decimal places; people see them rounded to the cent or to four places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from runvoy_core.cost.catalog import Catalog, PriceRow, load_catalog
from runvoy_core.cost.rules import BillingRule, format_cpu, format_mib, load_rules

AMOUNT_QUANTUM = Decimal("0.0000000001")
CENT = Decimal("0.01")


class PricingError(ValueError):
    """A run this provider cannot price (size, architecture, region, spot). ``valid_sizes`` when relevant."""

    def __init__(self, message: str, *, valid_sizes: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.valid_sizes = valid_sizes
        self.hint = hint


@dataclass
class PricedLine:
    dimension: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    source: str = ""


@dataclass
class Breakdown:
    provider: str
    region: str
    currency: str
    cpu: Decimal
    memory_mib: int
    storage_gib: int
    architecture: str
    capacity: str
    seconds: Decimal
    billed_seconds: Decimal
    catalog_version: str
    lines: list[PricedLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def amount(self, dimension: str) -> Decimal:
        return sum((line.amount for line in self.lines if line.dimension == dimension), Decimal(0))

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def size(self) -> str:
        return f"{format_cpu(self.cpu)} vCPU / {format_mib(self.memory_mib)}"


def quantize(amount: Decimal) -> Decimal:
    if amount == 0:
        return Decimal(0)  # not 0E-10, which is what a record or a table would show
    return amount.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def rule_for(provider: str) -> BillingRule:
    book = load_rules()
    rule = book.get(provider)
    if rule is None:
        known = ", ".join(sorted(book.providers))
        raise PricingError(
            f"no prices for provider {provider!r} (the catalog covers {known})",
            hint="costs of other providers are not tracked; see docs/cost.md",
        )
    return rule


def _line(row: PriceRow, dimension: str, amount_of_resource: Decimal, billed: Decimal) -> PricedLine:
    quantity = amount_of_resource * billed / row.unit_seconds
    amount = amount_of_resource * billed * row.price / row.unit_seconds
    return PricedLine(
        dimension=dimension,
        quantity=quantize(quantity),
        unit=row.unit,
        unit_price=row.price,
        amount=quantize(amount),
        source=row.source,
    )


def price_run(
    provider: str,
    cpu: Decimal,
    memory_mib: int,
    seconds: Decimal,
    *,
    region: str | None = None,
    architecture: str = "x86_64",
    spot: bool = False,
    storage_gib: int = 20,
    catalog: Catalog | None = None,
    equivalent: bool = False,
) -> Breakdown:
    """Price one run. With ``equivalent`` (what a run elsewhere would cost there) nothing is refused that can
    be approximated: the size is rounded up to the nearest valid one, an unsupported architecture or spot is
    priced as what the provider offers, an unknown region as the default region; each approximation is noted.
    Otherwise anything the provider cannot run raises PricingError."""
    rule = rule_for(provider)
    catalog = catalog or load_catalog()
    notes: list[str] = []
    region = region or rule.default_region

    if architecture not in rule.architectures:
        message = f"{provider} runs only {', '.join(rule.architectures)} (asked for {architecture})"
        if not equivalent:
            raise PricingError(message, hint="pick another --arch or another provider")
        notes.append(f"{message}; priced as {rule.architectures[0]}")
        architecture = rule.architectures[0]

    capacity = "spot" if spot else "on-demand"
    if spot and not rule.spot:
        message = f"{provider} has no spot capacity"
        if not equivalent:
            raise PricingError(message, hint="drop --spot or pick another provider")
        notes.append(f"{message}; priced on demand")
        capacity = "on-demand"

    problem = rule.size_problem(cpu, memory_mib)
    if problem is not None:
        valid = rule.describe_sizes()
        rounded = rule.round_up_size(cpu, memory_mib) if equivalent else None
        if rounded is None:
            raise PricingError(
                f"{problem}; valid sizes: {valid}",
                valid_sizes=valid,
                hint=f"choose a valid {provider} size with --cpu and --memory",
            )
        notes.append(
            f"{format_cpu(cpu)} vCPU / {format_mib(memory_mib)} is not a valid {provider} size; priced as the "
            f"nearest valid size {format_cpu(rounded[0])} vCPU / {format_mib(rounded[1])}"
        )
        cpu, memory_mib = rounded

    if rule.storage_max_gib and storage_gib > rule.storage_max_gib:
        raise PricingError(f"{provider} allows at most {rule.storage_max_gib} GiB of ephemeral storage")

    def find(dimension: str, where: str) -> PriceRow | None:
        return catalog.find(provider, where, architecture, capacity, dimension)

    if find("vcpu", region) is None or find("memory", region) is None:
        known = ", ".join(catalog.regions(provider))
        what = f"no {capacity} {architecture} price for {provider} in region {region!r} (catalog {catalog.version})"
        if not equivalent or region == rule.default_region:
            raise PricingError(
                f"{what}; regions with prices: {known}",
                hint="pick a listed region, or update the catalog with: runvoy cost refresh",
            )
        notes.append(f"{what}; priced as {rule.default_region}")
        region = rule.default_region
        if find("vcpu", region) is None or find("memory", region) is None:
            raise PricingError(f"no {capacity} {architecture} price for {provider} in {region}")

    billed = rule.billed_seconds(seconds)
    vcpu_row, memory_row = find("vcpu", region), find("memory", region)
    assert vcpu_row is not None and memory_row is not None
    lines = [
        _line(vcpu_row, "vcpu", cpu, billed),
        _line(memory_row, "memory", rule.billed_memory_gib(memory_mib), billed),
    ]
    extra_storage = rule.billed_storage_gib(storage_gib)
    if extra_storage:
        storage_row = find("storage", region)
        if storage_row is None:
            notes.append(
                f"no storage price for {provider} {region}; {extra_storage} GiB of storage not priced"
            )
        else:
            lines.append(_line(storage_row, "storage", Decimal(extra_storage), billed))
    return Breakdown(
        provider=provider,
        region=region,
        currency=vcpu_row.currency,
        cpu=cpu,
        memory_mib=memory_mib,
        storage_gib=storage_gib,
        architecture=architecture,
        capacity=capacity,
        seconds=seconds,
        billed_seconds=billed,
        catalog_version=catalog.version,
        lines=lines,
        notes=notes,
    )
