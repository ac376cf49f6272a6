"""The cost of a run as a ``Cost`` record: estimates before a run, and the billed cost of a finished one
(with what the same run would have cost on other providers, the "equivalents")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from runvoy_core.cost.catalog import Catalog, load_catalog
from runvoy_core.cost.pricing import Breakdown, PricingError, price_run, rule_for
from runvoy_core.errors import ValidationFailed
from runvoy_core.models import Cost, CostLine, Execution, Resources


def _to_cost(breakdown: Breakdown, *, estimated: bool) -> Cost:
    return Cost(
        provider=breakdown.provider,
        region=breakdown.region,
        currency=breakdown.currency,
        vcpu=breakdown.amount("vcpu"),
        memory=breakdown.amount("memory"),
        storage=breakdown.amount("storage"),
        total=breakdown.total,
        billed_seconds=breakdown.billed_seconds,
        catalog_version=breakdown.catalog_version,
        estimated=estimated,
        lines=[
            CostLine(
                dimension=line.dimension,
                quantity=line.quantity,
                unit=line.unit,
                unit_price=line.unit_price,
                amount=line.amount,
            )
            for line in breakdown.lines
        ],
        note="; ".join(breakdown.notes) or None,
    )


def price_resources(
    provider: str,
    resources: Resources,
    seconds: Decimal,
    *,
    region: str | None,
    equivalent: bool,
    catalog: Catalog | None = None,
) -> Breakdown:
    return price_run(
        provider,
        resources.cpu,
        resources.memory_mib,
        seconds,
        region=region,
        architecture=str(resources.architecture),
        spot=resources.spot,
        storage_gib=resources.storage_gib,
        catalog=catalog,
        equivalent=equivalent,
    )


def _as_decimal_seconds(value: Decimal | float | int) -> Decimal:
    seconds = value if isinstance(value, Decimal) else Decimal(str(value))
    if not seconds.is_finite() or seconds < 0:
        raise ValidationFailed(f"duration must be zero or more seconds, got {value}")
    return seconds


def estimate(
    provider: str,
    resources: Resources,
    duration_seconds: Decimal | float,
    *,
    region: str | None = None,
    home: Path | None = None,
) -> Cost:
    """What one run of ``duration_seconds`` would cost on ``provider``. Raises ValidationFailed when the
    provider cannot run this size, architecture, capacity or region (the message lists what it can)."""
    seconds = _as_decimal_seconds(duration_seconds)
    try:
        breakdown = price_resources(
            provider, resources, seconds, region=region, equivalent=False, catalog=load_catalog(home)
        )
    except PricingError as exc:
        raise ValidationFailed(exc.message, hint=exc.hint, valid_sizes=exc.valid_sizes) from None
    return _to_cost(breakdown, estimated=True)


def validate_size(provider: str, resources: Resources) -> None:
    """Raise ValidationFailed (listing the valid sizes) when ``provider`` cannot run this cpu/memory pair,
    architecture or storage exactly. Providers without a size table accept anything."""
    try:
        rule = rule_for(provider)
    except PricingError:
        return
    problem = rule.size_problem(resources.cpu, resources.memory_mib)
    if problem is not None:
        valid = rule.describe_sizes()
        raise ValidationFailed(
            f"{problem}; valid sizes: {valid}",
            hint=f"choose a valid {provider} size with --cpu and --memory",
            valid_sizes=valid,
        )
    if str(resources.architecture) not in rule.architectures:
        raise ValidationFailed(
            f"{provider} runs only {', '.join(rule.architectures)} (asked for {resources.architecture})",
            hint="pick another --arch or another provider",
        )
    if resources.spot and not rule.spot:
        raise ValidationFailed(
            f"{provider} has no spot capacity", hint="drop --spot or pick another provider"
        )
    if rule.storage_max_gib and resources.storage_gib > rule.storage_max_gib:
        raise ValidationFailed(
            f"{provider} allows {rule.storage_min_gib}-{rule.storage_max_gib} GiB of ephemeral storage"
        )


def billed_window(execution: Execution) -> tuple[datetime | None, datetime | None]:
    """The meter's start and stop: the provider's billed times, else the run's start and finish."""
    start = execution.billed_start or execution.started_at
    stop = execution.billed_stop or execution.finished_at
    return start, stop


def cost_of_execution(
    execution: Execution, *, equivalents_for: Iterable[str] = (), home: Path | None = None
) -> Cost:
    """The cost of a finished (or ending) execution; never raises for pricing reasons: what cannot be priced
    exactly is approximated and said in ``Cost.note``, what cannot be priced at all costs 0 with a note."""
    start, stop = billed_window(execution)
    notes: list[str] = []
    if start is None or stop is None:
        seconds = Decimal(0)
        notes.append("the run never started; nothing billed")
    else:
        seconds = max(Decimal(0), Decimal(str((stop - start).total_seconds())))
    resources = execution.request.resources
    catalog = load_catalog(home)
    try:
        breakdown = price_resources(
            execution.provider, resources, seconds, region=execution.region, equivalent=True, catalog=catalog
        )
        if start is None or stop is None:
            # no meter ran: a minimum charge does not apply to a task that never started
            breakdown.lines = []
            breakdown.billed_seconds = Decimal(0)
        cost = _to_cost(breakdown, estimated=False)
    except PricingError as exc:
        cost = Cost(
            provider=execution.provider,
            region=execution.region,
            catalog_version=catalog.version,
            billed_seconds=seconds,
            note=exc.message,
        )
    if notes:
        cost.note = "; ".join([*notes, *([cost.note] if cost.note else [])])

    equivalent_notes: list[str] = []
    for other in equivalents_for:
        if other == execution.provider:
            continue
        try:
            other_rule = rule_for(other)
            elsewhere = price_resources(
                other, resources, seconds, region=None, equivalent=True, catalog=catalog
            )
        except PricingError as exc:
            equivalent_notes.append(f"{other}: {exc.message}")
            continue
        if start is None or stop is None:
            continue
        cost.equivalents[other] = elsewhere.total
        equivalent_notes.extend(f"{other} ({other_rule.default_region}): {n}" for n in elsewhere.notes)
    if equivalent_notes:
        cost.note = "; ".join([*([cost.note] if cost.note else []), *equivalent_notes])
    return cost
