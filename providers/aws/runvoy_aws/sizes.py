"""Fargate's valid task sizes (Linux). Checked before any API call so a bad size fails fast and locally."""

from __future__ import annotations

from decimal import Decimal

from runvoy_core.errors import UsageError
from runvoy_core.models import Resources
from runvoy_core.units import format_memory

# vCPU -> memory MiB (first, last, step)
_SIZES: dict[Decimal, tuple[int, int, int]] = {
    Decimal("0.25"): (512, 2048, 0),  # 0.5, 1 and 2 GB: handled below
    Decimal("0.5"): (1024, 4096, 1024),
    Decimal("1"): (2048, 8192, 1024),
    Decimal("2"): (4096, 16384, 1024),
    Decimal("4"): (8192, 30720, 1024),
    Decimal("8"): (16384, 61440, 4096),
    Decimal("16"): (32768, 122880, 8192),
}
MIN_STORAGE_GIB = 20
MAX_STORAGE_GIB = 200


def valid_memory(cpu: Decimal) -> list[int]:
    first, last, step = _SIZES[cpu]
    if step == 0:
        return [512, 1024, 2048]
    return list(range(first, last + 1, step))


def cpu_units(cpu: Decimal) -> int:
    return int(cpu * 1024)


def describe_sizes() -> str:
    parts = []
    for cpu in _SIZES:
        mem = valid_memory(cpu)
        span = (
            ", ".join(format_memory(m) for m in mem)
            if len(mem) <= 4
            else (
                f"{format_memory(mem[0])}-{format_memory(mem[-1])} in {format_memory(mem[1] - mem[0])} steps"
            )
        )
        parts.append(f"{cpu} vCPU: {span}")
    return "; ".join(parts)


def validate_resources(resources: Resources) -> None:
    """Raise UsageError naming the field and the valid sizes."""
    cpu = resources.cpu
    if cpu not in _SIZES:
        raise UsageError(
            f"--cpu {cpu}: Fargate runs tasks with 0.25, 0.5, 1, 2, 4, 8 or 16 vCPU",
            hint=f"valid Fargate sizes: {describe_sizes()}",
        )
    memory = resources.memory_mib
    allowed = valid_memory(cpu)
    if memory not in allowed:
        raise UsageError(
            f"--memory {format_memory(memory)} is not valid with --cpu {cpu} on Fargate "
            f"(valid: {', '.join(format_memory(m) for m in allowed)})",
            hint=f"valid Fargate sizes: {describe_sizes()}",
        )
    if not MIN_STORAGE_GIB <= resources.storage_gib <= MAX_STORAGE_GIB:
        raise UsageError(
            f"--storage {resources.storage_gib}GiB: Fargate ephemeral storage is "
            f"{MIN_STORAGE_GIB}-{MAX_STORAGE_GIB} GiB",
            hint="use a size between 20 and 200 GiB (20 GiB is included in the price)",
        )
