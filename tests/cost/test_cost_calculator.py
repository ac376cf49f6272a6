"""estimate / validate_size / cost_of_execution: the functions the runner calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from runvoy_core.cost.calculator import cost_of_execution, estimate, validate_size
from runvoy_core.errors import ValidationFailed
from runvoy_core.models import Execution, ExecutionRequest, Resources, Status

D = Decimal
T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


def execution(
    provider: str,
    *,
    seconds: float | None,
    billed_seconds: float | None = None,
    region: str | None = None,
    **resources: object,
) -> Execution:
    started = T0 if seconds is not None else None
    finished = T0 + timedelta(seconds=seconds) if seconds is not None else None
    billed_start = T0 - timedelta(seconds=5) if billed_seconds is not None else None
    billed_stop = (
        billed_start + timedelta(seconds=billed_seconds) if billed_start and billed_seconds else None
    )
    return Execution(
        id="abc123def456",
        provider=provider,
        region=region,
        request=ExecutionRequest(command="true", resources=Resources.model_validate(dict(**resources))),
        status=Status.SUCCEEDED,
        started_at=started,
        finished_at=finished,
        billed_start=billed_start,
        billed_stop=billed_stop,
    )


def test_estimate_returns_a_decimal_cost_with_catalog_version() -> None:
    cost = estimate("aws", Resources.model_validate(dict(cpu="0.25", memory="512MiB")), 10.0)
    assert cost.provider == "aws" and cost.region == "us-east-1"
    assert cost.billed_seconds == 60
    assert isinstance(cost.total, Decimal)
    assert cost.total == cost.vcpu + cost.memory + cost.storage
    assert cost.catalog_version == "2026.11.1"
    assert cost.model_dump(mode="json")["total"] == str(cost.total)


def test_estimate_refuses_invalid_size_with_valid_sizes() -> None:
    with pytest.raises(ValidationFailed) as info:
        estimate("gcp", Resources.model_validate(dict(cpu="0.5", memory="512MiB")), 60)
    assert "1 vCPU: 512MiB-4GiB" in info.value.message
    assert info.value.exit_code == 125
    assert "valid_sizes" in info.value.to_dict()


def test_estimate_refuses_negative_duration() -> None:
    with pytest.raises(ValidationFailed):
        estimate("aws", Resources.model_validate(dict(cpu=1, memory="2GiB")), -1)


def test_validate_size() -> None:
    validate_size("aws", Resources.model_validate(dict(cpu=1, memory="2GiB")))
    validate_size("local", Resources.model_validate(dict(cpu="0.3", memory="100MiB")))
    validate_size("someone-elses-cloud", Resources.model_validate(dict(cpu="0.3", memory="100MiB")))
    with pytest.raises(ValidationFailed, match=r"aws cannot pair 1 vCPU with 1GiB; valid sizes: 0\.25 vCPU"):
        validate_size("aws", Resources.model_validate(dict(cpu=1, memory="1GiB")))
    with pytest.raises(ValidationFailed, match=r"gcp does not offer 0\.25 vCPU"):
        validate_size("gcp", Resources())
    with pytest.raises(ValidationFailed, match="runs only x86_64"):
        validate_size("azure", Resources.model_validate(dict(cpu=1, memory="1GiB", architecture="arm64")))
    with pytest.raises(ValidationFailed, match="no spot"):
        validate_size("gcp", Resources.model_validate(dict(cpu=1, memory="1GiB", spot=True)))


def test_cost_uses_billed_window_when_present() -> None:
    # ran 30 s, billed 125 s (image pull included): Fargate bills 125 s
    ex = execution("aws", seconds=30, billed_seconds=125, cpu=1, memory="2GiB")
    cost = cost_of_execution(ex)
    assert cost.billed_seconds == 125
    assert cost.estimated is False
    assert cost.vcpu == (D("0.04048") * 125 / 3600).quantize(D("0.0000000001"))


def test_cost_falls_back_to_started_and_finished() -> None:
    ex = execution("gcp", seconds=12.34, cpu=1, memory="1GiB")
    cost = cost_of_execution(ex)
    assert cost.billed_seconds == D("12.4")
    assert cost.total == D("12.4") * (D("0.000018") + D("0.000002"))


def test_fargate_minimum_in_a_finished_run() -> None:
    cost = cost_of_execution(execution("aws", seconds=3, cpu="0.25", memory="512MiB"))
    assert cost.billed_seconds == 60


def test_never_started_costs_nothing() -> None:
    cost = cost_of_execution(execution("aws", seconds=None, cpu=1, memory="2GiB"), equivalents_for=["gcp"])
    assert cost.total == 0 and cost.billed_seconds == 0
    assert cost.equivalents == {}
    assert cost.note and "never started" in cost.note


def test_local_run_has_zero_total_and_equivalents_in_default_regions() -> None:
    ex = execution("local", seconds=600, region="local", cpu=1, memory="2GiB")
    cost = cost_of_execution(ex, equivalents_for=["aws", "gcp", "azure"])
    assert cost.total == 0
    assert set(cost.equivalents) == {"aws", "gcp", "azure"}
    assert (
        cost.equivalents["aws"]
        == estimate("aws", Resources.model_validate(dict(cpu=1, memory="2GiB")), 600).total
    )
    assert (
        cost.equivalents["gcp"]
        == estimate(
            "gcp", Resources.model_validate(dict(cpu=1, memory="2GiB")), 600, region="us-central1"
        ).total
    )
    assert (
        cost.equivalents["azure"]
        == estimate("azure", Resources.model_validate(dict(cpu=1, memory="2GiB")), 600).total
    )
    assert cost.note is None
    data = cost.model_dump(mode="json")
    assert data["equivalents"]["aws"] == str(cost.equivalents["aws"])


def test_local_default_size_is_rounded_up_for_equivalents_and_said_so() -> None:
    # the default request (0.25 vCPU / 512 MiB) is valid on Fargate, not on Cloud Run (1 vCPU minimum)
    ex = execution("local", seconds=10, region="local")
    cost = cost_of_execution(ex, equivalents_for=["aws", "gcp"])
    assert cost.equivalents["gcp"] == D("10") * (D("0.000018") + D("0.000002") / 2)
    assert cost.note and "gcp" in cost.note and "nearest valid size 1 vCPU / 512MiB" in cost.note
    assert "aws" not in cost.note


def test_local_arm_run_priced_as_x86_where_arm_is_missing() -> None:
    ex = execution("local", seconds=60, cpu=1, memory="2GiB", architecture="arm64")
    cost = cost_of_execution(ex, equivalents_for=["aws", "gcp"])
    assert (
        cost.equivalents["aws"]
        == estimate(
            "aws", Resources.model_validate(dict(cpu=1, memory="2GiB", architecture="arm64")), 60
        ).total
    )
    assert cost.note and "runs only x86_64" in cost.note


def test_unknown_region_priced_at_default_region_with_a_note() -> None:
    cost = cost_of_execution(execution("aws", seconds=60, region="mars-north-1", cpu=1, memory="2GiB"))
    assert cost.total > 0
    assert cost.region == "us-east-1"
    assert cost.note and "mars-north-1" in cost.note


def test_unknown_provider_costs_zero_with_a_note() -> None:
    cost = cost_of_execution(execution("acme", seconds=60), equivalents_for=["aws"])
    assert cost.total == 0
    assert cost.note and "no prices for provider 'acme'" in cost.note
    assert "aws" in cost.equivalents


def test_equivalents_skip_own_provider() -> None:
    cost = cost_of_execution(
        execution("aws", seconds=60, cpu=1, memory="2GiB"), equivalents_for=["aws", "azure"]
    )
    assert set(cost.equivalents) == {"azure"}
