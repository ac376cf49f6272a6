"""Cloud Run jobs' cpu/memory limits, checked before any API call. Imports no Google library."""

from __future__ import annotations

from decimal import Decimal

from runvoy_core.cost.rules import rule_of
from runvoy_core.errors import ValidationFailed
from runvoy_core.models import Resources
from runvoy_core.units import format_memory
from runvoy_gcp.pricing import PRICING


def _cpu_memory_mib() -> dict[int, tuple[int, int]]:
    """vCPU -> (min MiB, max MiB) for Cloud Run jobs (x86 only), from the one declaration in this provider's
    billing rules (``data/billing.toml``, also what ``runvoy cost`` prices); see decision 0601."""
    rule = rule_of(PRICING)
    return {int(row.cpu): (row.memory_min, row.memory_max) for row in rule.sizes if row.cpu is not None}


CPU_MEMORY_MIB = _cpu_memory_mib()


def valid_sizes() -> str:
    return "; ".join(
        f"{cpu} vCPU: {format_memory(low)}-{format_memory(high)}"
        for cpu, (low, high) in CPU_MEMORY_MIB.items()
    )


def effective_size(resources: Resources) -> tuple[int, int]:
    """The (vCPU, MiB) a job gets. A value the user gave must be valid as it is; a value left at the core's
    default (0.25 vCPU, 512 MiB, sizes Cloud Run jobs do not offer) is rounded up to the smallest valid one."""
    explicit = resources.explicit
    cpu_given = "cpu" in explicit
    memory_given = "memory_mib" in explicit
    cpu: Decimal = resources.cpu
    memory = resources.memory_mib
    if str(resources.architecture) != "x86_64":
        raise ValidationFailed(
            f"Cloud Run jobs run only x86_64 (asked for {resources.architecture})",
            hint="drop --arch or pick another provider",
        )
    if resources.spot:
        raise ValidationFailed(
            "Cloud Run jobs have no spot capacity", hint="drop --spot or pick another provider"
        )
    if cpu_given:
        if cpu != cpu.to_integral_value() or int(cpu) not in CPU_MEMORY_MIB:
            raise ValidationFailed(
                f"cpu {cpu} is not a Cloud Run jobs size; valid sizes: {valid_sizes()}",
                hint="choose --cpu 1, 2, 4, 6 or 8 with a memory in the range listed",
                valid_sizes=valid_sizes(),
            )
        vcpu = int(cpu)
    else:
        fits = [c for c, (_, high) in CPU_MEMORY_MIB.items() if c >= cpu and memory <= high]
        if not fits:
            raise ValidationFailed(
                f"memory {format_memory(memory)} is more than Cloud Run jobs offer; valid sizes: {valid_sizes()}",
                hint="choose a smaller --memory",
                valid_sizes=valid_sizes(),
            )
        vcpu = fits[0]
    low, high = CPU_MEMORY_MIB[vcpu]
    if not memory_given:
        memory = max(memory, low)
    if not low <= memory <= high:
        raise ValidationFailed(
            f"memory {format_memory(memory)} is not valid with {vcpu} vCPU on Cloud Run jobs "
            f"({format_memory(low)}-{format_memory(high)}); valid sizes: {valid_sizes()}",
            hint="choose a valid --memory for the --cpu, or another --cpu",
            valid_sizes=valid_sizes(),
        )
    return vcpu, memory
