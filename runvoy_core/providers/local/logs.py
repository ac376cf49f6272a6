"""Local logs: the supervisor's output chunks (bytes in logs/<id>.log, indexed in logs.db), read back as
line events or as raw chunks.

A cursor is ``"<chunk seq>:<line index>"``: the position of the next line to read (every chunk before
``seq`` and the first ``line index`` lines of chunk ``seq`` have been read). It is opaque to callers and
shared by both readers, so a follower may switch between them.

An unknown ref reads as an empty page (with a cursor at the start), not NotFound: a task that has not
written anything yet and a task that does not exist look the same here; ``describe`` tells them apart.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from runvoy_core.errors import UsageError
from runvoy_core.models import LogEvent, LogPage
from runvoy_core.ports.logs import FileRange
from runvoy_core.providers.local import db

START = "0:0"
# chunks hold up to ~1 MiB: fetch a few at a time, more while a page still has room
_FIRST_BATCH = 4
_MAX_BATCH = 256
_RAW_BATCH = 8
RAW_BYTES_PER_READ = 8 << 20


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    if cursor is None or cursor == "":
        return 0, 0
    seq, sep, line = cursor.partition(":")
    try:
        if not sep:
            raise ValueError
        position = int(seq), int(line)
    except ValueError:
        raise UsageError(
            f"invalid log cursor {cursor!r} for the local provider",
            hint="pass back the cursor a previous read returned, or none to start at the beginning",
        ) from None
    if position[0] < 0 or position[1] < 0:
        raise UsageError(f"invalid log cursor {cursor!r} for the local provider")
    return position


def _skip_lines(data: bytes, count: int) -> bytes:
    start = 0
    for _ in range(count):
        nl = data.find(b"\n", start)
        if nl < 0:
            return b""
        start = nl + 1
    return data[start:]


class LocalLogs:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._logs = db.ThreadConnections(self.home, db.LOGS_DB)

    def close(self) -> None:
        self._logs.close()

    def _rows(self, ref: str, from_seq: int, limit: int) -> list[tuple[int, str, float, int, int]]:
        """Index rows (seq, stream, ts, offset, length) from ``from_seq`` on."""
        rows = (
            self._logs.get()
            .execute(
                "SELECT seq, stream, ts, offset, length FROM log_chunks WHERE execution_id = ? AND seq >= ? "
                "ORDER BY seq LIMIT ?",
                (ref, from_seq, limit),
            )
            .fetchall()
        )
        return [(int(seq), str(st), float(ts), int(off), int(ln)) for seq, st, ts, off, ln in rows]

    def _chunks(self, ref: str, from_seq: int, limit: int) -> list[tuple[int, str, float, bytes]]:
        rows = self._rows(ref, from_seq, limit)
        if not rows:
            return []
        fd = os.open(db.log_path(self.home, ref), os.O_RDONLY)
        try:
            return [(seq, st, ts, os.pread(fd, ln, off)) for seq, st, ts, off, ln in rows]
        finally:
            os.close(fd)

    def read(
        self, ref: str, cursor: str | None = None, limit: int = 1000, pattern: str | None = None
    ) -> LogPage:
        seq, line = parse_cursor(cursor)
        limit = max(1, limit)
        events: list[LogEvent] = []
        full = False
        batch = _FIRST_BATCH
        while not full:
            chunks = self._chunks(ref, seq, batch)
            for chunk_seq, stream, ts, data in chunks:
                if chunk_seq != seq:  # a later chunk: start at its first line
                    seq, line = chunk_seq, 0
                lines = data.split(b"\n")
                if lines[-1] == b"":
                    lines.pop()
                stamp = datetime.fromtimestamp(ts, UTC)
                while line < len(lines) and len(events) < limit:
                    message = lines[line].decode("utf-8", errors="replace")
                    line += 1
                    if pattern is None or pattern in message:
                        events.append(LogEvent(timestamp=stamp, stream=stream, message=message))
                if line < len(lines):
                    full = True  # the page filled up in the middle of this chunk
                    break
                seq, line = chunk_seq + 1, 0
                if len(events) >= limit:
                    full = True
                    break
            if len(chunks) < batch:
                break
            batch = min(batch * 4, _MAX_BATCH)
        return LogPage(events=events, cursor=f"{seq}:{line}")

    def read_raw_chunks(
        self, ref: str, cursor: str | None = None, max_bytes: int = RAW_BYTES_PER_READ
    ) -> tuple[list[tuple[str, bytes]], str]:
        """Whole chunks of complete lines after ``cursor``, as ``[(stream, bytes)]``, and the new cursor.

        For attached streaming: the caller writes each chunk to its stdout/stderr as is, with no per-line
        work (this is what keeps ``runvoy run`` near the bare command's throughput). An empty list means
        nothing new yet; the cursor is the same as ``read``'s.
        """
        ranges, cursor = self.read_raw_ranges(ref, cursor, max_bytes)
        if not ranges:
            return [], cursor
        fd = os.open(ranges[0].path, os.O_RDONLY)
        try:
            return [(r.stream, os.pread(fd, r.length, r.offset)) for r in ranges], cursor
        finally:
            os.close(fd)

    def read_raw_ranges(
        self, ref: str, cursor: str | None = None, max_bytes: int = RAW_BYTES_PER_READ
    ) -> tuple[list[FileRange], str]:
        """``read_raw_chunks``, as ranges of the log file: the attached CLI copies them to its stdout with
        ``sendfile``, so a flood of output crosses no user-space buffer on its way to the terminal."""
        seq, line = parse_cursor(cursor)
        path = db.log_path(self.home, ref)
        out: list[FileRange] = []
        total = 0
        while total < max_bytes:
            rows = self._rows(ref, seq, _RAW_BATCH)
            if not rows:
                break
            for row_seq, stream, _ts, offset, length in rows:
                if row_seq == seq and line:  # resume in the middle of a chunk that `read` paged through
                    with open(path, "rb") as file:
                        file.seek(offset)
                        skipped = length - len(_skip_lines(file.read(length), line))
                    offset, length = offset + skipped, length - skipped
                if length:
                    out.append(FileRange(stream, path, offset, length))
                    total += length
                seq, line = row_seq + 1, 0
                if total >= max_bytes:
                    break
            if len(rows) < _RAW_BATCH:
                break
        return out, f"{seq}:{line}"
