"""Logs: paged reads with an opaque cursor. Follow = repeated reads from the last cursor."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from runvoy_core.models import LogPage


class FileRange:
    """``length`` bytes of one stream's output at ``offset`` in a file on this machine.

    Optional capabilities, for providers that keep log bytes in local files (the local provider): an
    attached run streams them with no per-line work, and ranges let the sink copy file to terminal inside
    the kernel (``sendfile``).
    - ``read_raw_chunks(ref, cursor) -> ([(stream, bytes)], cursor)``: whole chunks of complete lines;
    - ``read_raw_ranges(ref, cursor) -> ([FileRange], cursor)``: the same chunks, as ranges of a file.
    The cursor is ``read``'s: a follower may switch between the three.
    """

    __slots__ = ("length", "offset", "path", "stream")

    def __init__(self, stream: str, path: Path, offset: int, length: int) -> None:
        self.stream, self.path, self.offset, self.length = stream, path, offset, length

    def read(self) -> bytes:
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            return file.read(self.length)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileRange):
            return NotImplemented
        return (self.stream, self.path, self.offset, self.length) == (
            other.stream,
            other.path,
            other.offset,
            other.length,
        )

    def __hash__(self) -> int:
        return hash((self.stream, self.path, self.offset, self.length))

    def __repr__(self) -> str:
        return f"FileRange({self.stream!r}, {str(self.path)!r}, offset={self.offset}, length={self.length})"


@runtime_checkable
class LogsPort(Protocol):
    def read(
        self, ref: str, cursor: str | None = None, limit: int = 1000, pattern: str | None = None
    ) -> LogPage:
        """Events after ``cursor`` (from the start when None), oldest first, at most ``limit``.
        The returned cursor resumes after the last event returned; an empty page means nothing new yet.
        ``pattern`` keeps only events whose message contains it (providers may use a native filter)."""
