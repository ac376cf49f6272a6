"""Fargate's valid task sizes (Linux), from the one declaration in this provider's billing rules
(``data/billing.toml``, also what ``runvoy cost`` prices). Checked before any API call so a bad size fails
fast and locally."""

from __future__ import annotations

from decimal import Decimal

from runvoy_aws.pricing import PRICING
from runvoy_core.cost.rules import BillingRule, format_cpu, rule_of
from runvoy_core.errors import UsageError
from runvoy_core.models import Resources
from runvoy_core.units import format_memory


def rule() -> BillingRule:
    return rule_of(PRICING)


def cpu_units(cpu: Decimal) -> int:
    return int(cpu * 1024)


def validate_resources(resources: Resources) -> None:
    """Raise UsageError naming the field and the valid sizes."""
    fargate = rule()
    hint = f"valid Fargate sizes: {fargate.describe_sizes()}"
    rows = [row for row in fargate.sizes if row.cpu_ok(resources.cpu)]
    if not rows:
        offered = [format_cpu(row.cpu) for row in fargate.sizes if row.cpu is not None]
        listed = ", ".join(offered[:-1]) + f" or {offered[-1]}" if len(offered) > 1 else "".join(offered)
        raise UsageError(f"--cpu {resources.cpu}: Fargate runs tasks with {listed} vCPU", hint=hint)
    if not any(row.memory_ok(resources.memory_mib) for row in rows):
        raise UsageError(
            f"--memory {format_memory(resources.memory_mib)} is not valid with --cpu {resources.cpu} on Fargate "
            f"(valid: {'; '.join(row.describe() for row in rows)})",
            hint=hint,
        )
    low, high = fargate.storage_min_gib, fargate.storage_max_gib
    if not low <= resources.storage_gib <= high:
        raise UsageError(
            f"--storage {resources.storage_gib}GiB: Fargate ephemeral storage is {low}-{high} GiB",
            hint=f"use a size between {low} and {high} GiB ({fargate.free_storage_gib} GiB is included in the price)",
        )
