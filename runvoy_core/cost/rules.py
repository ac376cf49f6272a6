"""Billing rules per provider (each provider's ``PriceSource.rules`` TOML): billed time, valid sizes, free storage.

Standard library only: ``runvoy cost estimate`` must answer fast, so nothing here imports pydantic.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from runvoy_core.cost.source import PriceSource, PriceSourceError

MIB_PER_GIB = 1024


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` that is >= ``value`` (``step`` 0 leaves it unchanged)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def format_cpu(cpu: Decimal) -> str:
    text = format(cpu.normalize(), "f")
    return text


def format_mib(mib: int) -> str:
    if mib % MIB_PER_GIB == 0:
        return f"{mib // MIB_PER_GIB}GiB"
    return f"{mib}MiB"


@dataclass(frozen=True)
class SizeRange:
    """One row of a provider's size table: a cpu value (or a cpu range) and the memory allowed with it."""

    cpu: Decimal | None = None
    cpu_min: Decimal | None = None
    cpu_max: Decimal | None = None
    cpu_step: Decimal | None = None
    memory_values: tuple[int, ...] = ()
    memory_min: int = 0
    memory_max: int = 0
    memory_step: int = 1
    memory_round_gib: Decimal | None = None

    @classmethod
    def from_toml(cls, data: dict[str, Any]) -> SizeRange:
        return cls(
            cpu=_dec(data["cpu"]) if "cpu" in data else None,
            cpu_min=_dec(data["cpu_min"]) if "cpu_min" in data else None,
            cpu_max=_dec(data["cpu_max"]) if "cpu_max" in data else None,
            cpu_step=_dec(data["cpu_step"]) if "cpu_step" in data else None,
            memory_values=tuple(int(v) for v in data.get("memory_mib", ())),
            memory_min=int(data.get("memory_min_mib", 0)),
            memory_max=int(data.get("memory_max_mib", 0)),
            memory_step=int(data.get("memory_step_mib", 1)),
            memory_round_gib=_dec(data["memory_round_gib"]) if "memory_round_gib" in data else None,
        )

    def cpu_at_least(self, cpu: Decimal) -> Decimal | None:
        """The smallest cpu of this row that is >= ``cpu``, or None."""
        if self.cpu is not None:
            return self.cpu if cpu <= self.cpu else None
        assert self.cpu_min is not None and self.cpu_max is not None
        candidate = max(self.cpu_min, ceil_to_step(cpu, self.cpu_step or Decimal(0)))
        return candidate if candidate <= self.cpu_max else None

    def cpu_ok(self, cpu: Decimal) -> bool:
        return self.cpu_at_least(cpu) == cpu

    def memory_at_least(self, mib: int) -> int | None:
        if self.memory_values:
            return next((v for v in self.memory_values if v >= mib), None)
        candidate = max(self.memory_min, mib)
        step = max(self.memory_step, 1)
        offset = (candidate - self.memory_min) % step
        if offset:
            candidate += step - offset
        return candidate if candidate <= self.memory_max else None

    def memory_ok(self, mib: int) -> bool:
        return self.memory_at_least(mib) == mib

    def describe(self) -> str:
        if self.cpu is not None:
            cpu = f"{format_cpu(self.cpu)} vCPU"
        else:
            assert self.cpu_min is not None and self.cpu_max is not None
            cpu = f"{format_cpu(self.cpu_min)}-{format_cpu(self.cpu_max)} vCPU (steps of {self.cpu_step})"
        if self.memory_values:
            memory = "/".join(format_mib(v) for v in self.memory_values)
        elif self.memory_round_gib is not None:
            top = (Decimal(self.memory_max) / MIB_PER_GIB).normalize()
            memory = f"{self.memory_round_gib}-{top:f} GB (billed rounded up to {self.memory_round_gib} GB)"
        else:
            memory = f"{format_mib(self.memory_min)}-{format_mib(self.memory_max)}"
            if self.memory_step >= 64:
                memory += f" in {format_mib(self.memory_step)} steps"
        return f"{cpu}: {memory}"


@dataclass(frozen=True)
class BillingRule:
    provider: str
    service: str
    default_region: str
    minimum_seconds: Decimal
    rounding_step_seconds: Decimal
    meter_start: str
    meter_stop: str
    billed_size: str
    free_storage_gib: int
    storage_min_gib: int
    storage_max_gib: int
    architectures: tuple[str, ...]
    spot: bool
    sizes: tuple[SizeRange, ...] = ()
    free_tier: str | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, provider: str, data: dict[str, Any]) -> BillingRule:
        return cls(
            provider=provider,
            service=data["service"],
            default_region=data["default_region"],
            minimum_seconds=_dec(data["minimum_seconds"]),
            rounding_step_seconds=_dec(data["rounding_step_seconds"]),
            meter_start=data["meter_start"],
            meter_stop=data["meter_stop"],
            billed_size=data["billed_size"],
            free_storage_gib=int(data["free_storage_gib"]),
            storage_min_gib=int(data["storage_min_gib"]),
            storage_max_gib=int(data["storage_max_gib"]),
            architectures=tuple(data["architectures"]),
            spot=bool(data["spot"]),
            sizes=tuple(SizeRange.from_toml(s) for s in data.get("sizes", ())),
            free_tier=data.get("free_tier"),
            source=data.get("source", ""),
        )

    def billed_seconds(self, seconds: Decimal) -> Decimal:
        """Apply the rounding step, then the minimum (Fargate: per second with a one-minute minimum)."""
        if seconds < 0:
            seconds = Decimal(0)
        return max(self.minimum_seconds, ceil_to_step(seconds, self.rounding_step_seconds))

    def billed_memory_gib(self, memory_mib: int) -> Decimal:
        gib = Decimal(memory_mib) / MIB_PER_GIB
        for size in self.sizes:
            if size.memory_round_gib is not None:
                return ceil_to_step(gib, size.memory_round_gib)
        return gib

    def billed_storage_gib(self, storage_gib: int) -> int:
        """GiB above the free allowance (only providers that bill ephemeral storage)."""
        if self.storage_max_gib == 0:
            return 0
        return max(0, storage_gib - self.free_storage_gib)

    def size_problem(self, cpu: Decimal, memory_mib: int) -> str | None:
        """Why this provider cannot run ``cpu`` / ``memory_mib`` exactly, or None when it can."""
        if not self.sizes:
            return None
        rows = [s for s in self.sizes if s.cpu_ok(cpu)]
        if not rows:
            return f"{self.provider} does not offer {format_cpu(cpu)} vCPU"
        if any(s.memory_ok(memory_mib) for s in rows):
            return None
        return f"{self.provider} cannot pair {format_cpu(cpu)} vCPU with {format_mib(memory_mib)}"

    def describe_sizes(self) -> str:
        return "; ".join(s.describe() for s in self.sizes) or "any size"

    def round_up_size(self, cpu: Decimal, memory_mib: int) -> tuple[Decimal, int] | None:
        """The smallest valid size with at least this cpu and memory (fewest vCPU first), or None."""
        best: tuple[Decimal, int] | None = None
        for size in self.sizes:
            c = size.cpu_at_least(cpu)
            if c is None:
                continue
            m = size.memory_at_least(memory_mib)
            if m is None:
                continue
            if best is None or (c, m) < best:
                best = (c, m)
        if not self.sizes:
            return cpu, memory_mib
        return best


@dataclass(frozen=True)
class RuleBook:
    version: str
    effective_date: str
    retrieved_date: str
    providers: dict[str, BillingRule]

    def get(self, provider: str) -> BillingRule | None:
        return self.providers.get(provider)


def rule_of(source: PriceSource) -> BillingRule:
    """The billing rule a provider declares (its sizes too): what its compute validates requests with."""
    return rule_book((source,)).providers[source.provider]


def load_rules() -> RuleBook:
    """The billing rules of every installed provider that declares a price source."""
    from runvoy_core.cost.source import load_price_sources

    return rule_book(tuple(load_price_sources().values()))


@functools.lru_cache(maxsize=8)
def rule_book(sources: tuple[PriceSource, ...]) -> RuleBook:
    """The rules of these providers. The catalog's version is theirs when they agree (else each one's, named);
    its effective date the newest, its retrieval date the oldest: one stale provider makes the catalog stale."""
    providers: dict[str, BillingRule] = {}
    versions: dict[str, str] = {}
    effective: list[str] = []
    retrieved: list[str] = []
    for source in sources:
        try:
            data = tomllib.loads(source.rules.read_text(encoding="utf-8"))
            meta = data.pop("catalog", {})
            providers[source.provider] = BillingRule.from_toml(source.provider, data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PriceSourceError(
                f"the billing rules of provider {source.provider!r} cannot be read: {exc}"
            ) from None
        versions[source.provider] = str(meta.get("version", "unknown"))
        effective.append(str(meta.get("effective_date", "")))
        retrieved.append(str(meta.get("retrieved_date", "")))
    distinct = sorted(set(versions.values()))
    version = distinct[0] if len(distinct) == 1 else ",".join(f"{p}:{v}" for p, v in sorted(versions.items()))
    return RuleBook(
        version=version or "unknown",
        effective_date=max(effective, default=""),
        retrieved_date=min(retrieved, default=""),
        providers=providers,
    )
