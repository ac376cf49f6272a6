"""The cloud simulator's core: really runs a started task's command on this machine.

A per-cloud adapter (written by each provider's tests) turns the events into that cloud's state: it writes
output lines into the cloud's log service (CloudWatch Logs on moto, the fake Cloud Logging, the fake ACI) and
reports the exit code through the cloud's API objects. The process machinery is the local provider's.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Protocol

from runvoy_core.providers.local.process import ExitInfo, ManagedProcess
from runvoy_core.providers.local.tree import MarkedProcesses

TASK_MARKER = "_RUNVOY_SIMULATED_TASK"
"""Set in a simulated task's environment: how its processes are found when they leave its process group,
as a container's would all end with it (the process rule, decision 0207)."""


class SimulatorAdapter(Protocol):
    def on_start(self, task: SimulatedTask) -> None: ...

    def on_output(self, task: SimulatedTask, stream: str, timestamp: float, lines: list[str]) -> None: ...

    def on_exit(self, task: SimulatedTask, info: ExitInfo) -> None: ...


class SimulatedTask:
    def __init__(
        self,
        key: str,
        argv: list[str],
        env: dict[str, str],
        adapter: SimulatorAdapter,
        *,
        timeout: float | None = None,
        grace: float = 2.0,
        start_delay: float = 0.0,
        start_gate: threading.Event | None = None,
    ) -> None:
        self.key = key
        self.argv = argv
        self.env = env
        self.adapter = adapter
        self.start_delay = start_delay
        self.start_gate = start_gate
        self.exit_info: ExitInfo | None = None
        self.started_at: float | None = None
        self._stop_grace: float | None = None
        self._cancelled_before_start = False
        self._done = threading.Event()
        marker = uuid.uuid4().hex
        self._process = ManagedProcess(
            argv,
            env={**env, TASK_MARKER: marker},
            on_output=self._on_output,
            timeout=timeout,
            grace=grace,
            descendants=MarkedProcesses(TASK_MARKER, marker),
        )
        self._thread = threading.Thread(target=self._run, name=f"sim-{key}", daemon=True)

    def _on_output(self, stream: str, timestamp: float, data: bytes | memoryview) -> None:
        lines = str(data, "utf-8", "replace").splitlines()
        self.adapter.on_output(self, stream, timestamp, lines)

    def _run(self) -> None:
        try:
            if self.start_delay:
                time.sleep(self.start_delay)
            # a test holds the task before its start with a gate (a delay would race a loaded machine);
            # a stop still ends the wait
            while self.start_gate is not None and self._stop_grace is None and not self.start_gate.wait(0.05):
                pass
            if self._stop_grace is not None:
                self._cancelled_before_start = True
                now = time.time()
                self.exit_info = ExitInfo(None, None, now, now, stopped=True)
            else:
                self._process.start()
                self.started_at = self._process.started_at
                self.adapter.on_start(self)
                self.exit_info = self._process.run(should_stop=self._should_stop, tick=0.05)
            self.adapter.on_exit(self, self.exit_info)
            self._process.end_leftovers()
        finally:
            self._done.set()

    def _should_stop(self) -> float | None:
        return self._stop_grace

    def begin(self) -> SimulatedTask:
        self._thread.start()
        return self

    def stop(self, grace: float = 2.0) -> None:
        """Graceful stop: SIGTERM now, SIGKILL after ``grace`` (0 kills at once)."""
        self._stop_grace = max(grace, 0.0)

    def wait(self, timeout: float | None = None) -> ExitInfo | None:
        self._done.wait(timeout)
        return self.exit_info

    @property
    def done(self) -> bool:
        return self._done.is_set()


class CloudSimulator:
    """Keeps the simulated tasks of one test session; ``shutdown`` kills whatever is left."""

    def __init__(self) -> None:
        self._tasks: dict[str, SimulatedTask] = {}
        self._lock = threading.Lock()

    def launch(
        self,
        key: str,
        argv: list[str],
        env: dict[str, str],
        adapter: SimulatorAdapter,
        *,
        timeout: float | None = None,
        grace: float = 2.0,
        start_delay: float = 0.0,
        start_gate: threading.Event | None = None,
    ) -> SimulatedTask:
        with self._lock:
            task = SimulatedTask(
                key,
                argv,
                env,
                adapter,
                timeout=timeout,
                grace=grace,
                start_delay=start_delay,
                start_gate=start_gate,
            )
            self._tasks[key] = task
        return task.begin()

    def get(self, key: str) -> SimulatedTask | None:
        return self._tasks.get(key)

    def stop(self, key: str, grace: float = 2.0) -> None:
        task = self._tasks.get(key)
        if task is not None:
            task.stop(grace)

    def tasks(self) -> list[SimulatedTask]:
        return list(self._tasks.values())

    def shutdown(self, timeout: float = 5.0) -> None:
        for task in self.tasks():
            task.stop(0)
        for task in self.tasks():
            task.wait(timeout)
        self._tasks.clear()
