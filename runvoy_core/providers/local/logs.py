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

    def _chunks(self, ref: str, from_seq: int, limit: int) -> list[tuple[int, str, float, bytes]]:
        rows = (
            self._logs.get()
            .execute(
                "SELECT seq, stream, ts, offset, length FROM log_chunks WHERE execution_id = ? AND seq >= ? "
                "ORDER BY seq LIMIT ?",
                (ref, from_seq, limit),
            )
            .fetchall()
        )
        if not rows:
            return []
        fd = os.open(db.log_path(self.home, ref), os.O_RDONLY)
        try:
            return [(int(seq), str(st), float(ts), os.pread(fd, ln, off)) for seq, st, ts, off, ln in rows]
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
        seq, line = parse_cursor(cursor)
        out: list[tuple[str, bytes]] = []
        total = 0
        while total < max_bytes:
            chunks = self._chunks(ref, seq, _RAW_BATCH)
            if not chunks:
                break
            for chunk_seq, stream, _ts, data in chunks:
                if chunk_seq == seq and line:
                    data = _skip_lines(data, line)
                if data:
                    out.append((stream, data))
                    total += len(data)
                seq, line = chunk_seq + 1, 0
                if total >= max_bytes:
                    break
            if len(chunks) < _RAW_BATCH:
                break
        return out, f"{seq}:{line}"
