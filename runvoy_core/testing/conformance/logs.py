"""The logs suite: complete reads, exact cursor resumption across small pages, the pattern filter and
unknown refs. Requires a fixture ``provider`` (logs are produced by really running a task).

Unknown refs: a provider may return an empty page or raise NotFound; both are accepted, anything else
(another exception, invented events) fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from runvoy_core.errors import NotFound
from runvoy_core.testing.conformance.support import ProviderWaits

MANY = 1500


class LogsConformance(ProviderWaits):
    many_lines: int = MANY
    """Lines of the large test; more than one default page (1000)."""

    @pytest.fixture
    def finished_task(self, provider: Any) -> str:
        """A task that printed line-1 ... line-N to stdout and ended."""
        n = self.many_lines
        _, ref = self.start(provider, f'i=1; while [ "$i" -le {n} ]; do echo "line-$i"; i=$((i+1)); done')
        self.wait_ended(provider, ref)
        self.wait_logs(provider, ref, n)
        return ref

    def expected(self) -> list[str]:
        return [f"line-{i}" for i in range(1, self.many_lines + 1)]

    def test_more_than_a_page_of_lines_is_complete_and_in_order(
        self, provider: Any, finished_task: str
    ) -> None:
        events = self.read_all(provider, finished_task, limit=1000)
        assert [e.message for e in events] == self.expected()
        assert {e.stream for e in events} == {"stdout"}

    def test_cursor_resumes_exactly_after_the_last_event(self, provider: Any, finished_task: str) -> None:
        messages: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = provider.logs.read(finished_task, cursor, 7)
            assert len(page.events) <= 7
            if not page.events:
                break
            pages += 1
            messages.extend(e.message for e in page.events)
            assert page.cursor is not None
            cursor = page.cursor
        assert pages >= self.many_lines // 7
        assert messages == self.expected(), "pages lost or repeated events"
        # at the end the cursor stays valid and reads nothing new
        again = provider.logs.read(finished_task, cursor, 7)
        assert again.events == []

    def test_first_page_then_the_rest(self, provider: Any, finished_task: str) -> None:
        first = provider.logs.read(finished_task, None, 1)
        assert [e.message for e in first.events] == ["line-1"]
        rest = self.read_all_from(provider, finished_task, first.cursor)
        assert [e.message for e in rest] == self.expected()[1:]

    def read_all_from(self, provider: Any, ref: str, cursor: str | None) -> list[Any]:
        events: list[Any] = []
        while True:
            page = provider.logs.read(ref, cursor, 500)
            if not page.events:
                return events
            events.extend(page.events)
            cursor = page.cursor

    def test_pattern_keeps_only_matching_events(self, provider: Any, finished_task: str) -> None:
        events = self.read_all(provider, finished_task, limit=50, pattern="line-14")
        wanted = [m for m in self.expected() if "line-14" in m]
        assert [e.message for e in events] == wanted

    def test_unknown_ref_is_empty_or_not_found(self, provider: Any) -> None:
        try:
            page = provider.logs.read(self.unknown_log_ref(), None, 10)
        except NotFound as exc:
            assert exc.hint
            return
        assert page.events == []

    def unknown_log_ref(self) -> str:
        return "000000000000"

    def test_blank_lines_and_utf8_survive(self, provider: Any) -> None:
        _, ref = self.start(provider, "printf 'a\\n\\nb\\n'; echo 'héllo ✓'; printf 'no newline'")
        self.wait_ended(provider, ref)
        events = self.wait_logs(provider, ref, 4)
        assert [e.message for e in events] == ["a", "", "b", "héllo ✓", "no newline"]
