"""What ACI accepts for a container group's size, checked before any call (see docs/decisions/0701-azure-sizes.md)."""

from __future__ import annotations

import math
from decimal import Decimal

from runvoy_azure.pricing import PRICING
from runvoy_core.cost.rules import rule_of
from runvoy_core.errors import UsageError
from runvoy_core.models import Resources

# from the one declaration in this provider's billing rules (data/billing.toml), which `runvoy cost` prices too
_SIZE = rule_of(PRICING).sizes[0]
assert _SIZE.cpu_min is not None and _SIZE.cpu_step is not None and _SIZE.memory_round_gib is not None
MIN_CPU: Decimal = _SIZE.cpu_min
CPU_STEP: Decimal = _SIZE.cpu_step
MEMORY_STEP_GB: Decimal = _SIZE.memory_round_gib
MIN_MEMORY_GB = MEMORY_STEP_GB


def memory_gb(memory_mib: int) -> float:
    """MiB rounded up to ACI's 0.1 GB steps (ACI bills and allocates in GB)."""
    tenths = math.ceil(memory_mib * 10 / 1024)
    return round(tenths / 10, 1)


def validate_size(resources: Resources, *, max_cpu: float, max_memory_gb: float) -> tuple[float, float]:
    """The (cpu, memory_in_gb) to request, or a UsageError naming the valid values."""
    cpu = resources.cpu
    max_cpu_d = Decimal(str(max_cpu))
    if cpu < MIN_CPU or cpu > max_cpu_d or cpu % CPU_STEP != 0:
        raise UsageError(
            f"--cpu {cpu}: Azure Container Instances takes {MIN_CPU} to {max_cpu:g} vCPU "
            f"in steps of {CPU_STEP} (e.g. 0.5, 1, 2, 4)",
            hint="pick a value in that range; the limit per region is providers.azure.max_cpu",
        )
    gb = memory_gb(resources.memory_mib)
    if gb < float(MIN_MEMORY_GB) or gb > max_memory_gb:
        raise UsageError(
            f"--memory {resources.memory_mib}MiB ({gb:g} GB): Azure Container Instances takes "
            f"{MIN_MEMORY_GB} to {max_memory_gb:g} GB per group, in steps of {MEMORY_STEP_GB} GB",
            hint="pick a value in that range; the limit per region is providers.azure.max_memory_gb",
        )
    return float(cpu), gb
