"""Compute: each task is a directory (named after the execution id, which makes ``start`` idempotent) and a
supervisor process (``task.py``) that leads its own session. Every answer comes from the files, so another
process — ``runvoy status`` in a second terminal — sees exactly what the starter sees."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from runvoy_core.errors import NotFound, UsageError
from runvoy_core.models import ExecutionRequest
from runvoy_core.ports.compute import TaskPhase, TaskSpec, TaskState

MIN_MEMORY_MIB = 6
# a start whose supervisor has not said it runs within this long has failed
SPAWN_GRACE = 30.0


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has ended: it only waits to be reaped
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class TemplateCompute:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    # -- validate: refuse what can never run, naming the field and the valid values; no side effect --------
    def validate(self, request: ExecutionRequest) -> None:
        cores = os.cpu_count() or 1
        if request.resources.cpu > Decimal(cores):
            raise UsageError(
                f"--cpu {request.resources.cpu}: this machine has {cores} cores",
                hint=f"ask for at most {cores} vCPU",
            )
        if request.resources.memory_mib < MIN_MEMORY_MIB:
            raise UsageError(
                f"--memory {request.resources.memory_mib}MiB: a task needs at least {MIN_MEMORY_MIB}MiB",
                hint="ask for more memory",
            )

    # -- start: idempotent on the key (the execution id) ----------------------------------------------------
    def start(self, spec: TaskSpec, idempotency_key: str) -> str:
        task_dir = self.state_dir / idempotency_key
        try:
            task_dir.mkdir(parents=True)
        except FileExistsError:
            return idempotency_key  # started before (a retried start): never a second task
        (task_dir / "spec.json").write_text(
            json.dumps({"execution_id": spec.execution_id, "argv": spec.argv, "workdir": spec.workdir})
        )
        env = {**os.environ, **spec.env}  # plain values only; this template has no secret store
        process = subprocess.Popen(
            [sys.executable, "-m", "runvoy_template.task", str(task_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own session and group: a stop signals the whole task
        )
        (task_dir / "supervisor.json").write_text(json.dumps({"pid": process.pid, "created_at": time.time()}))
        return idempotency_key

    # -- observe ----------------------------------------------------------------------------------------
    def describe(self, ref: str) -> TaskState:
        task_dir = self.state_dir / ref
        supervisor = _read(task_dir / "supervisor.json")
        if supervisor is None:
            return TaskState(ref=ref, phase=TaskPhase.UNKNOWN, reason=f"no task {ref!r} in {self.state_dir}")
        running = _read(task_dir / "running.json") or {}
        stop = _read(task_dir / "stop.json")
        started = _when(running.get("started_at"))
        base: dict[str, Any] = {
            "ref": ref,
            "execution_id": ref,
            "started_at": started,
            "billed_start": started,
        }
        outcome = _read(task_dir / "exit.json")
        if outcome is None and not _alive(int(supervisor["pid"])):
            outcome = _read(task_dir / "exit.json")  # it may have written it between the two reads
            if outcome is None and stop is not None and stop.get("force"):
                outcome = {"signal": signal.SIGKILL, "stopped_at": stop["at"]}  # killed with its supervisor
            elif outcome is None:
                return TaskState(
                    phase=TaskPhase.UNKNOWN, reason="the task's supervisor ended without an outcome", **base
                )
        if outcome is not None:
            stopped = _when(outcome.get("stopped_at"))
            return TaskState(
                phase=TaskPhase.STOPPED,
                exit_code=outcome.get("exit_code"),
                signal=outcome.get("signal"),
                failed_to_start="failed_to_start" in outcome,
                reason=outcome.get("failed_to_start"),
                stopped_by_request=stop is not None,
                stopped_at=stopped,
                billed_stop=stopped,
                **base,
            )
        if not running:
            if time.time() - float(supervisor["created_at"]) > SPAWN_GRACE:
                return TaskState(phase=TaskPhase.UNKNOWN, reason="the task never started", **base)
            return TaskState(phase=TaskPhase.STARTING, **base)
        return TaskState(phase=TaskPhase.STOPPING if stop else TaskPhase.RUNNING, **base)

    def stop(self, ref: str, grace: float, *, force: bool = False) -> None:
        task_dir = self.state_dir / ref
        supervisor = _read(task_dir / "supervisor.json")
        if supervisor is None:
            raise NotFound(f"no task {ref!r} in {self.state_dir}")
        if (task_dir / "exit.json").exists():
            return
        previous = _read(task_dir / "stop.json") or {}
        (task_dir / "stop.json").write_text(
            json.dumps({"at": previous.get("at", time.time()), "force": force})
        )
        # the runner sends the kill itself once ``grace`` has passed (force=True)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(supervisor["pid"]), signal.SIGKILL if force else signal.SIGTERM)

    def find(self, execution_id: str) -> str | None:
        return execution_id if (self.state_dir / execution_id / "supervisor.json").exists() else None

    def list_active(self) -> list[TaskState]:
        if not self.state_dir.is_dir():
            return []
        states = [self.describe(path.name) for path in self.state_dir.iterdir() if path.is_dir()]
        return [state for state in states if not state.ended]

    def cleanup(self, ref: str) -> None:
        pass  # the files are the task's record of itself; a real cloud would release resources here
