"""The formatting helpers of the CLI: money, durations, the summary line, secret masking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from runvoy_cli import views
from runvoy_cli.commands.config import MASK, mask
from runvoy_core.models import Cost, Execution, ExecutionRequest, Status


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal(0), "$0"),
        (Decimal("0.0000123"), "$0.000012"),
        (Decimal("0.0456"), "$0.0456"),
        (Decimal("1234.5"), "$1,234.50"),
    ],
)
def test_money(amount: Decimal, text: str) -> None:
    assert views.money(amount) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (0.42, "0.4s"), (42, "42s"), (125, "2m05s"), (7380, "2h03m")]
)
def test_duration(seconds: float | None, text: str) -> None:
    assert views.duration(seconds) == text


def _execution(**fields: object) -> Execution:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return Execution.model_validate(
        {
            "id": "3f9a1c07b2e4",
            "provider": "local",
            "request": ExecutionRequest(command="sleep 1"),
            "started_at": start,
            "finished_at": start + timedelta(seconds=1.5),
            **fields,
        }
    )


def test_summary_line_is_short_and_says_why() -> None:
    cost = Cost(provider="local", equivalents={"aws": Decimal("0.0002"), "gcp": Decimal("0.00001")})
    ok = _execution(status=Status.SUCCEEDED, exit_code=0, cost=cost)
    assert (
        views.summary_line(ok)
        == "runvoy: 3f9a1c07b2e4 SUCCEEDED (exit 0) in 1.5s, cost $0 (on gcp $0.000010)"
    )
    failed = _execution(status=Status.FAILED, exit_code=3, reason="exited with code 3")
    assert views.summary_line(failed, prefix="") == "3f9a1c07b2e4 FAILED (exit 3) in 1.5s"
    lost = _execution(status=Status.LOST, reason="the provider no longer knows this task")
    assert views.summary_line(lost).endswith("LOST in 1.5s — the provider no longer knows this task")


def test_mask_hides_secret_values_and_url_paths() -> None:
    data = {
        "providers": {
            "azure": {"storage_connection_string": "AccountKey=abc", "secret_values": {"db": "pw"}},
            "gcp": {"anonymous_credentials": True, "project": "p"},
            "acme": {"api_key": "k", "token": None},
        },
        "notify": {"webhook_url": "https://user:pw@hooks.example.com/T0/B0/XYZ", "other_url": "https://x.io"},
    }
    masked = mask(data)
    assert masked["providers"]["azure"] == {"storage_connection_string": MASK, "secret_values": {"db": MASK}}
    assert masked["providers"]["gcp"] == {"anonymous_credentials": True, "project": "p"}
    assert masked["providers"]["acme"] == {"api_key": MASK, "token": None}
    assert masked["notify"] == {
        "webhook_url": f"https://hooks.example.com/{MASK}",
        "other_url": "https://x.io",
    }
