"""How executions look to a person: the one-line summary after a run, the status block, list rows.

Pure functions over runvoy_core models (imported lazily by the commands that need them), so that they are easy
to test and no command grows its own formatting rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runvoy_core.models import Cost, Execution, StatusChange


def money(amount: Decimal | None, currency: str = "USD") -> str:
    """Cents from a dollar up, four places from a cent, six below (a 10-second run costs fractions of a cent)."""
    if amount is None:
        return "-"
    symbol = "$" if currency == "USD" else f"{currency} "
    if amount == 0:
        return f"{symbol}0"
    if abs(amount) >= 1:
        return f"{symbol}{amount:,.2f}"
    if abs(amount) >= Decimal("0.01"):
        return f"{symbol}{amount:.4f}"
    return f"{symbol}{amount:.6f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def age(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    if seconds < 60:
        return f"{max(int(seconds), 0)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def equivalents_text(cost: Cost) -> str:
    """'aws $0.000012, gcp $0.000010, azure $0.000015' (what a local run would have cost on a cloud)."""
    return ", ".join(f"{name} {money(amount, cost.currency)}" for name, amount in cost.equivalents.items())


def cost_text(cost: Cost | None, *, short: bool = False) -> str:
    if cost is None:
        return "-"
    text = money(cost.total, cost.currency)
    if cost.estimated:
        text += " (estimate)"
    if cost.equivalents:
        if short:
            name, amount = min(cost.equivalents.items(), key=lambda item: item[1])
            text += f" (on {name} {money(amount, cost.currency)})"
        else:
            text += f"; would cost on {equivalents_text(cost)}"
    return text


def truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _reason_worth_showing(execution: Execution) -> str | None:
    reason = execution.reason
    if not reason or reason == f"exited with code {execution.exit_code}":
        return None
    return reason


def summary_line(execution: Execution, *, prefix: str = "runvoy: ") -> str:
    """The line `runvoy run` prints on stderr when a run ends: short enough to read at a glance, e.g.
    ``runvoy: 3f9a1c07b2e4 FAILED (exit 3) in 0.4s, cost $0 (on gcp $0.000001)``."""
    line = f"{prefix}{execution.id} {execution.status.value}"
    if execution.exit_code is not None:
        line += f" (exit {execution.exit_code})"
    line += f" in {duration(execution.duration)}"
    if execution.cost is not None:
        line += f", cost {cost_text(execution.cost, short=True)}"
    reason = _reason_worth_showing(execution)
    if reason and execution.status.value != "SUCCEEDED":
        line += f" — {reason}"
    return line


def status_fields(execution: Execution) -> list[tuple[str, Any]]:
    """The key: value block of `runvoy status`."""
    request = execution.request
    resources = request.resources
    from runvoy_core.units import format_memory

    fields: list[tuple[str, Any]] = [
        ("id", execution.id),
        ("status", execution.status.value),
    ]
    if execution.reason:
        fields.append(("reason", execution.reason))
    fields += [
        ("exit code", execution.exit_code),
        ("command", request.shell_command()),
        ("provider", execution.provider),
        ("region", execution.region),
        ("task", execution.task_ref),
        ("image", request.image),
        *([("image digest", request.image_digest)] if request.image_digest else []),
        (
            "resources",
            f"{resources.cpu} vCPU, {format_memory(resources.memory_mib)}, {resources.architecture.value}"
            + (", spot" if resources.spot else ""),
        ),
        ("timeout", duration(request.timeout) if request.timeout else None),
        ("created", execution.created_at),
        ("started", execution.started_at),
        ("finished", execution.finished_at),
        ("duration", duration(execution.duration)),
        ("user", f"{execution.user}@{execution.host}" if execution.host else execution.user),
        ("request id", execution.request_id),
    ]
    if execution.lock:
        fields.append(("lock", f"{execution.lock} (fence {execution.fence})"))
    if request.labels:
        fields.append(("labels", ", ".join(f"{k}={v}" for k, v in sorted(request.labels.items()))))
    if execution.cost is not None:
        fields.append(("cost", cost_text(execution.cost)))
        if execution.cost.note:
            fields.append(("cost note", execution.cost.note))
    if execution.error and execution.error != execution.reason:
        fields.append(("error", execution.error))
    return fields


def event_rows(events: list[StatusChange]) -> list[list[Any]]:
    rows = []
    for event in events:
        detail = ", ".join(f"{k}={v}" for k, v in event.detail.items())
        rows.append([event.at, event.status.value if event.status else "", event.event, detail])
    return rows


def list_row(execution: Execution, now: datetime | None = None) -> list[Any]:
    return [
        execution.id,
        execution.status.value,
        execution.exit_code,
        execution.provider,
        age(execution.created_at, now),
        duration(execution.duration),
        money(execution.cost.total, execution.cost.currency) if execution.cost else "-",
        truncate(execution.request.shell_command(), 48),
    ]


LIST_HEADERS = ["id", "status", "exit", "provider", "age", "duration", "cost", "command"]


def execution_json(execution: Execution, events: list[StatusChange] | None = None) -> dict[str, Any]:
    data = execution.public_dict()
    if events is not None:
        data["events"] = [e.model_dump(mode="json") for e in events]
    return data
