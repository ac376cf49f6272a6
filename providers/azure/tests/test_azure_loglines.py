"""Properties of the log cursor (pure functions over ACI's timestamped log text)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from runvoy_azure import loglines

BASE = "2026-11-27T03:00:00.{:09d}Z"

# a log: lines with non-decreasing timestamps, many shared, messages possibly blank or repeated
logs = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3), st.sampled_from(["", "x", "same", "héllo ✓", "a b"])),
    max_size=60,
).map(
    lambda steps: [
        f"{BASE.format(sum(step for step, _ in steps[: i + 1]))} {message}"
        for i, (_, message) in enumerate(steps)
    ]
)


def _read_all(lines: list[loglines.LogLine], limit: int) -> list[str]:
    cursor: str | None = None
    out: list[str] = []
    for _ in range(10_000):
        start = loglines.resume_index(lines, cursor)
        page = lines[start : start + limit]
        if not page:
            return out
        out.extend(line.message for line in page)
        cursor = loglines.make_cursor(lines, start + len(page) - 1)
    raise AssertionError("no progress")


@settings(max_examples=200, deadline=None)
@given(logs, st.integers(min_value=1, max_value=7))
def test_paging_with_any_page_size_reads_every_line_once(raw: list[str], limit: int) -> None:
    lines = loglines.parse("".join(line + "\n" for line in raw))
    assert _read_all(lines, limit) == [line.split(" ", 1)[1] for line in raw]


@settings(max_examples=200, deadline=None)
@given(logs, st.data())
def test_a_cursor_survives_the_log_growing_and_merge_is_exact(raw: list[str], data: st.DataObject) -> None:
    lines = loglines.parse("".join(line + "\n" for line in raw))
    cut = data.draw(st.integers(min_value=0, max_value=len(lines)))
    early, full = lines[:cut], lines
    merged = loglines.merge(early, full)
    assert [line.render() for line in merged] == [line.render() for line in full]
    if cut:
        cursor = loglines.make_cursor(early, cut - 1)
        assert loglines.resume_index(full, cursor) == cut
