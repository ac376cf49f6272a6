"""Helpers shared by the conformance suites: waiting on a provider and reading all of a task's logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from runvoy_core.models import LogEvent, new_execution_id
from runvoy_core.ports.capabilities import Capability
from runvoy_core.ports.compute import TaskPhase, TaskSpec, TaskState

T = TypeVar("T")


def capabilities_of(provider: Any) -> frozenset[Capability]:
    """What the provider's registered spec declares (the one place capabilities live)."""
    from runvoy_core.plugins.manager import get_plugins

    spec = get_plugins().registry.get(provider.name)
    assert spec is not None, f"provider {provider.name!r} is not registered by any plugin"
    return spec.capabilities


def wait_for(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float, what: str
) -> T:
    """Call ``probe`` until ``done(result)``; fail the test with ``what`` and the last result on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {result!r}")
        time.sleep(interval)


class ProviderWaits:
    """Timing knobs a provider's subclass may tune (slow emulators, eventually consistent log services)."""

    poll_interval: float = 0.05
    # generous bounds: a wait returns as soon as its state is reached, and a loaded machine is slow
    max_wait: float = 60.0
    """For a short task to end (or to start running)."""
    stop_margin: float = 20.0
    """Allowed beyond the grace period for stop() to end a task (below the 30 s grace a force stop beats)."""
    log_wait: float = 30.0
    """For logs to be complete once the task has ended."""
    image: str | None = None
    """The image tasks run in (None for providers that run commands without one)."""

    def make_spec(self, command: str, execution_id: str | None = None, **fields: Any) -> TaskSpec:
        execution_id = execution_id or new_execution_id()
        env = {"RUNVOY_EXECUTION_ID": execution_id, **fields.pop("env", {})}
        return TaskSpec(
            execution_id=execution_id,
            argv=["/bin/sh", "-c", command],
            image=self.image,
            env=env,
            **fields,
        )

    def start(self, provider: Any, command: str, **fields: Any) -> tuple[TaskSpec, str]:
        spec = self.make_spec(command, **fields)
        ref = provider.compute.start(spec, spec.execution_id)
        assert isinstance(ref, str) and ref, f"start() must return a non-empty ref, got {ref!r}"
        return spec, ref

    def wait_ended(self, provider: Any, ref: str, timeout: float | None = None) -> TaskState:
        state: TaskState = wait_for(
            lambda: provider.compute.describe(ref),
            lambda s: s.ended,
            timeout=self.max_wait if timeout is None else timeout,
            interval=self.poll_interval,
            what=f"task {ref} to end",
        )
        return state

    def wait_running(self, provider: Any, ref: str) -> TaskState:
        state: TaskState = wait_for(
            lambda: provider.compute.describe(ref),
            lambda s: s.phase == TaskPhase.RUNNING or s.ended,
            timeout=self.max_wait,
            interval=self.poll_interval,
            what=f"task {ref} to run",
        )
        assert state.phase == TaskPhase.RUNNING, f"task ended instead of running: {state!r}"
        return state

    def read_all(
        self, provider: Any, ref: str, *, limit: int = 1000, pattern: str | None = None
    ) -> list[LogEvent]:
        """Every event from the start, page by page (one pass)."""
        events: list[LogEvent] = []
        cursor = None
        for _ in range(100_000):
            page = (
                provider.logs.read(ref, cursor, limit, pattern)
                if pattern
                else provider.logs.read(ref, cursor, limit)
            )
            assert len(page.events) <= limit, f"read() returned {len(page.events)} events, limit was {limit}"
            events.extend(page.events)
            if not page.events:
                break
            assert page.cursor is not None, "a page with events must return a cursor"
            cursor = page.cursor
        return events

    def wait_logs(
        self, provider: Any, ref: str, count: int, *, limit: int = 1000, pattern: str | None = None
    ) -> list[LogEvent]:
        """All events once at least ``count`` are readable (log services may lag behind the task)."""
        events: list[LogEvent] = wait_for(
            lambda: self.read_all(provider, ref, limit=limit, pattern=pattern),
            lambda evs: len(evs) >= count,
            timeout=self.log_wait,
            interval=max(self.poll_interval, 0.1),
            what=f"{count} log events of task {ref}",
        )
        return events

    def force_stop(self, provider: Any, ref: str) -> None:
        """Test clean-up: never leave a task running."""
        try:
            provider.compute.stop(ref, 0, force=True)
        except Exception:
            pass
