"""A log sink that remembers what it was given, for tests of runs with live output (any provider)."""

from __future__ import annotations

from runvoy_core.models import LogEvent


class RecordingSink:
    """The LogSink of ``Runvoy.run(..., log_sink=...)``: keeps every event, in the order it came."""

    def __init__(self) -> None:
        self.events: list[LogEvent] = []

    def write_events(self, events: list[LogEvent]) -> None:
        self.events.extend(events)

    def lines(self, stream: str | None = None) -> list[str]:
        """The messages, of one stream or of all."""
        return [e.message for e in self.events if stream is None or e.stream == stream]
