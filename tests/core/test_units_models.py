from __future__ import annotations

import re
from decimal import Decimal

import pytest

from runvoy_core.api import build_request
from runvoy_core.errors import ValidationFailed
from runvoy_core.models import Execution, ExecutionRequest, Status, new_execution_id
from runvoy_core.records import RecordError as ValidationError
from runvoy_core.units import format_duration, format_memory, parse_cpu, parse_duration, parse_memory_mib


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        ("512MiB", 512),
        ("2GiB", 2048),
        ("2G", 2048),
        ("1.5GiB", 1536),
        ("256", 256),
        (1024, 1024),
        ("0.0625TiB", 65536),
    ],
)
def test_memory_units(text: object, mib: int) -> None:
    assert parse_memory_mib(text) == mib


@pytest.mark.parametrize("bad", ["lots", "-1GiB", "0", "1.3MiB", "2PB", "", True])
def test_memory_rejects_with_accepted_form(bad: object) -> None:
    with pytest.raises(ValueError, match="512MiB"):
        parse_memory_mib(bad)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("45", 45)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["-1", "0s", "ten minutes", "5x", "1h-2m"])
def test_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="90s"):
        parse_duration(bad)


def test_cpu_forms() -> None:
    assert parse_cpu("500m") == Decimal("0.5")
    assert parse_cpu("2") == Decimal(2)
    with pytest.raises(ValueError):
        parse_cpu("-1")
    with pytest.raises(ValueError):
        parse_cpu("many")


def test_formatting() -> None:
    assert format_memory(2048) == "2GiB"
    assert format_memory(512) == "512MiB"
    assert format_duration(3725) == "1h02m"


def test_request_needs_exactly_one_command() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        ExecutionRequest()
    with pytest.raises(ValidationError, match="exactly one"):
        ExecutionRequest(command="x", argv=["y"])


def test_request_errors_name_the_field() -> None:
    with pytest.raises(ValidationFailed) as info:
        build_request("echo", memory="lots")
    assert "resources.memory" in info.value.message and "512MiB" in info.value.message
    with pytest.raises(ValidationFailed, match="timeout"):
        build_request("echo", timeout="-1")
    with pytest.raises(ValidationFailed, match="RUNVOY_"):
        build_request("echo", env={"RUNVOY_X": "1"})
    with pytest.raises(ValidationFailed, match="label key"):
        build_request("echo", labels={"Bad Key": "x"})


def test_request_round_trips_through_json() -> None:
    request = build_request(
        ["python", "-c", "print(1)"], cpu="1", memory="2GiB", arch="aarch64", timeout="10m"
    )
    again = ExecutionRequest.model_validate_json(request.model_dump_json())
    assert again == request
    assert again.resources.architecture.value == "arm64"
    assert request.shell_command() == "python -c 'print(1)'"


def test_execution_ids_are_short_and_distinct() -> None:
    ids = {new_execution_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)


def test_status_terminality() -> None:
    assert Status.TIMED_OUT.is_terminal and not Status.STOPPING.is_terminal
    record = Execution(id="abc", provider="local", request=build_request("true"))
    assert record.public_dict()["status"] == "PENDING"


def test_lock_slots_rules_are_one_line_errors() -> None:
    assert build_request("true", lock="etl", lock_slots=3).lock_slots == 3
    assert build_request("true").lock_slots == 1
    with pytest.raises(ValidationFailed, match=r"^invalid request: lock_slots needs a lock name"):
        build_request("true", lock_slots=2)
    with pytest.raises(ValidationFailed, match="on_conflict cancel cannot be used with lock_slots"):
        build_request("true", lock="etl", lock_slots=2, on_conflict="cancel")
    with pytest.raises(ValidationFailed, match=r"lock_slots: must be a whole number at most 100"):
        build_request("true", lock="etl", lock_slots=101)


def test_queue_and_slots_do_not_mix() -> None:
    assert build_request("true", lock="etl", on_conflict="queue").on_conflict == "queue"
    with pytest.raises(ValidationFailed, match="on_conflict queue cannot be used with lock_slots"):
        build_request("true", lock="etl", lock_slots=2, on_conflict="queue")
