"""ACI's log text (``list_logs(timestamps=True)``) as lines, and the exact cursor over it.

ACI returns the whole log as one string with no cursor. Every line starts with an RFC 3339 timestamp with
nanoseconds; several lines can share one. The cursor names the last line handed out as
``<timestamp>|<n>``: the n-th line carrying that exact timestamp. The next read resumes after that line,
so nothing is repeated and nothing is skipped, even when many lines share a timestamp. Should that line
no longer be in the text (the head was cut at ACI's size limit, or the text is a shorter snapshot), the
read resumes at the first line stamped later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:?\d\d) ?(.*)$", re.S)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LogLine:
    stamp: str
    """The timestamp exactly as ACI wrote it (compared as text for identity)."""
    key: tuple[int, int]
    """(epoch seconds, nanoseconds): for ordering."""
    message: str

    @property
    def timestamp(self) -> datetime:
        seconds, nanos = self.key
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)

    def render(self) -> str:
        return f"{self.stamp} {self.message}"


def _key(base: str, fraction: str | None, zone: str) -> tuple[int, int]:
    zone = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
    moment = datetime.fromisoformat(base + zone)
    return int((moment - _EPOCH).total_seconds()), int((fraction or "0").ljust(9, "0"))


def parse(content: str | None) -> list[LogLine]:
    """Lines in order; a line without a timestamp (rare: a wrapped fragment) takes the previous line's."""
    lines: list[LogLine] = []
    if not content:
        return lines
    text = content[:-1] if content.endswith("\n") else content
    for raw in text.split("\n"):
        raw = raw.removesuffix("\r")
        match = _STAMPED.match(raw)
        if match:
            base, fraction, zone, message = match.groups()
            stamp = raw[: len(raw) - len(message)].rstrip(" ")
            lines.append(LogLine(stamp, _key(base, fraction, zone), message))
        elif lines:
            previous = lines[-1]
            lines.append(LogLine(previous.stamp, previous.key, raw))
        else:
            lines.append(LogLine("1970-01-01T00:00:00Z", (0, 0), raw))
    return lines


def render(lines: list[LogLine]) -> str:
    return "".join(line.render() + "\n" for line in lines)


def make_cursor(lines: list[LogLine], index: int) -> str:
    """The cursor naming ``lines[index]``."""
    stamp = lines[index].stamp
    nth = sum(1 for line in lines[: index + 1] if line.stamp == stamp)
    return f"{stamp}|{nth}"


def resume_index(lines: list[LogLine], cursor: str | None) -> int:
    """Index of the first line after ``cursor``."""
    if not cursor:
        return 0
    stamp, _, nth_text = cursor.rpartition("|")
    try:
        nth = int(nth_text)
    except ValueError:
        return 0
    seen = 0
    for index, line in enumerate(lines):
        if line.stamp == stamp:
            seen += 1
            if seen == nth:
                return index + 1
    match = _STAMPED.match(stamp + " ")
    if match is None:
        return 0
    after = _key(match.group(1), match.group(2), match.group(3))
    for index, line in enumerate(lines):
        if line.key > after:
            return index
    return len(lines)


def merge(archived: list[LogLine], live: list[LogLine]) -> list[LogLine]:
    """The archived lines followed by the live lines that came after them."""
    if not archived:
        return list(live)
    cursor = make_cursor(archived, len(archived) - 1)
    return archived + live[resume_index(live, cursor) :]
