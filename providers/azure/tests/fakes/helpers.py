"""Small helpers shared by the azure tests (loaded under the runvoy_azure_testfakes package)."""

from __future__ import annotations

import time
from typing import Any

from runvoy_core.ports import TaskSpec, TaskState
from runvoy_core.testing.waiting import DEADLINE


def spec(execution_id: str, command: str, **fields: Any) -> TaskSpec:
    return TaskSpec(execution_id=execution_id, argv=["/bin/sh", "-c", command], **fields)


def wait_for(provider: Any, ref: str, predicate: Any, timeout: float = DEADLINE) -> TaskState:
    deadline = time.monotonic() + timeout
    state = provider.compute.describe(ref)
    while not predicate(state):
        if time.monotonic() > deadline:
            raise AssertionError(f"{ref}: condition not reached; last state {state}")
        time.sleep(0.03)
        state = provider.compute.describe(ref)
    return state


def wait_ended(provider: Any, ref: str, timeout: float = DEADLINE) -> TaskState:
    return wait_for(provider, ref, lambda s: s.ended, timeout)


def read_all(provider: Any, ref: str, limit: int = 1000) -> list[str]:
    cursor: str | None = None
    lines: list[str] = []
    while True:
        page = provider.logs.read(ref, cursor, limit)
        cursor = page.cursor
        if not page.events:
            return lines
        lines.extend(e.message for e in page.events)
