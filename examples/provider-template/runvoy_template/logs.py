"""Logs: the task's output.jsonl, read from a byte offset (the cursor), whole lines only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from runvoy_core.models import LogEvent, LogPage


class TemplateLogs:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def read(
        self, ref: str, cursor: str | None = None, limit: int = 1000, pattern: str | None = None
    ) -> LogPage:
        offset = int(cursor) if cursor else 0
        try:
            with open(self.state_dir / ref / "output.jsonl", "rb") as file:
                file.seek(offset)
                data = file.read()
        except FileNotFoundError:
            return LogPage(events=[], cursor=cursor)  # not started yet, or unknown: nothing to show
        events: list[LogEvent] = []
        for raw in data.splitlines(keepends=True):
            if len(events) >= limit or not raw.endswith(b"\n"):
                break
            offset += len(raw)
            record = json.loads(raw)
            if pattern is not None and pattern not in record["m"]:
                continue
            stamp = datetime.fromtimestamp(record["t"], UTC)
            events.append(LogEvent(timestamp=stamp, stream=record["s"], message=record["m"]))
        return LogPage(events=events, cursor=str(offset))
