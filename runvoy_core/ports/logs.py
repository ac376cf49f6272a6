"""Logs: paged reads with an opaque cursor. Follow = repeated reads from the last cursor."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from runvoy_core.models import LogPage


@runtime_checkable
class LogsPort(Protocol):
    def read(
        self, ref: str, cursor: str | None = None, limit: int = 1000, pattern: str | None = None
    ) -> LogPage:
        """Events after ``cursor`` (from the start when None), oldest first, at most ``limit``.
        The returned cursor resumes after the last event returned; an empty page means nothing new yet.
        ``pattern`` keeps only events whose message contains it (providers may use a native filter)."""
