"""Local compute: each task runs under its own detached supervisor process (see supervisor.py).

The task row in state.db is the contract between this class and the supervisor: ``start`` inserts it (the
idempotency key is its primary key, so a retried start finds the row and spawns nothing), the supervisor
records pids and the outcome in it, and ``stop`` writes the grace period into it before signalling.

Secrets: a secret ``NAME`` (or ``path/to/NAME``) becomes the variable of the core's one rule
(``runvoy_core.secrets``: ``db-password`` -> ``DB_PASSWORD``, as on every cloud); its value is read from the
caller's variable of that name with ``LocalConfig.secret_env_prefix`` in front (empty by default). The value travels only through the supervisor's process environment, never through SQLite.

Environment: the command gets the env rule's base set and ``LocalConfig.pass_env`` of the caller's variables
(envrule.py, decision 0209), the spec's env, its secrets and runvoy's RUNVOY_* values, nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runvoy_core.errors import ImageNotSupported, NotFound, StartFailed, UsageError
from runvoy_core.models import Architecture, ExecutionRequest
from runvoy_core.ports.compute import TaskPhase, TaskSpec, TaskState, make_store_id
from runvoy_core.providers.local import db, envrule, procinfo, standby
from runvoy_core.providers.local.config import LocalConfig
from runvoy_core.providers.local.supervisor import BOOT, HOME_ENV, PASSED_ENV

_PACKAGES_DIR = str(Path(__file__).absolute().parents[3])
"""The directory that holds runvoy_core: the supervisor runs without site (``-S``), so it is told where
to import from (decision 0210)."""
SPAWN_GRACE = 15.0
"""A task row without a supervisor pid this long after its creation was never started (the starter died)."""
STORE_LABEL = "runvoy.store"
"""The key under which a task row's labels keep the id of the store its record is in (decision 0016)."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE_HINT = (
    'set container_runtime = "podman" in the [providers.local] section of the config file '
    "(or RUNVOY_PROVIDERS__LOCAL__CONTAINER_RUNTIME=podman), or pick a cloud provider with --provider"
)
_TASK_COLUMNS = (
    "id, execution_id, created_at, sup_pid, sup_start, pid, pgid, proc_start, started_at, "
    "stop_requested_at, stop_grace, stop_force, finished_at, exit_code, signal, timed_out, stopped, killed, "
    "failed_to_start, error, timeout, grace"
)

# supervisors this process started: polled so that they never linger as zombies in a long-lived caller
_CHILDREN: dict[str, subprocess.Popen[bytes] | _Spawned] = {}
_CHILDREN_LOCK = threading.Lock()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class LocalCompute:
    def __init__(self, home: Path, config: LocalConfig | None = None) -> None:
        self.home = Path(home)
        self.config = config or LocalConfig()
        self._state = db.ThreadConnections(self.home, db.STATE_DB)

    @property
    def store_id(self) -> str:
        """Records and tasks share the home's state.db, so the home is the store's identity."""
        return make_store_id("local", str(self.home.resolve()))

    def close(self) -> None:
        self._state.close()

    # -- validate -----------------------------------------------------------------------------------------
    def validate(self, request: ExecutionRequest) -> None:
        # placement this machine cannot honour is refused, not ignored (docs/inputs.md)
        if request.region is not None:
            raise UsageError(
                f"the local provider cannot place a run in region {request.region!r}: it runs on this machine",
                hint="drop --region, or choose a cloud provider with --provider",
            )
        try:
            host: Architecture | None = Architecture(platform.machine().lower())
        except ValueError:
            host = None
        asked = request.resources.architecture
        if "architecture" in request.resources.explicit and host is not None and asked != host:
            raise UsageError(
                f"the local provider runs on this machine's architecture ({host.value}), not {asked.value}",
                hint="drop --arch, or choose a cloud provider with --provider",
            )
        self._check_image(request.image)
        self._resolve_secrets(request.secrets)
        if request.workdir and request.image is None and not Path(request.workdir).is_dir():
            raise UsageError(
                f"workdir {request.workdir!r} is not a directory on this machine",
                hint="give an existing directory, or leave it out to run in the current directory",
            )

    def _check_image(self, image: str | None) -> None:
        if not image:
            return
        if self.config.container_runtime is None:
            raise ImageNotSupported(
                f"the local provider cannot run image {image!r}: no container runtime is configured",
                hint=_IMAGE_HINT,
            )
        if shutil.which(self.config.runtime_path) is None:
            raise ImageNotSupported(
                f"the container runtime {self.config.runtime_path!r} is not installed (not found on PATH)",
                hint="install podman, or set runtime_path in the [providers.local] section of the config file",
            )

    def _resolve_secrets(self, names: list[str]) -> dict[str, str]:
        """Variable -> value. The variable follows the core's rule, which also refuses RUNVOY_* and two
        secrets on one variable (a TaskSpec is not checked by the request model)."""
        from runvoy_core.secrets import secret_env_names

        variables = secret_env_names((name, name.rstrip("/").rsplit("/", 1)[-1]) for name in names)
        values: dict[str, str] = {}
        for env, name in variables.items():
            var = self.config.secret_env_prefix + env
            value = os.environ.get(var)
            if value is None:
                raise UsageError(
                    f"secret {name!r} is not set: the local provider reads it from the environment "
                    f"variable {var}",
                    hint=f"export {var}=... in the shell that runs runvoy",
                )
            values[env] = value
        return values

    # -- start --------------------------------------------------------------------------------------------
    def command_argv(self, spec: TaskSpec) -> list[str]:
        """What the supervisor executes: the spec's argv, or a container runtime wrapping it."""
        argv = list(spec.argv)
        if spec.image is None:
            if argv[:2] == ["/bin/sh", "-c"] and self.config.shell != "/bin/sh":
                argv[0] = self.config.shell
            return argv
        wrapped = [
            self.config.runtime_path,
            "run",
            "--rm",
            "-i",
            "--runtime",
            self.config.oci_runtime,
            "--name",
            f"runvoy-{spec.execution_id}",
            "--label",
            f"runvoy.execution-id={spec.execution_id}",
        ]
        # "-e NAME" without a value: podman copies the value from its own environment, so secret values
        # never appear on a command line (which any local user can read in /proc)
        for name in sorted({*spec.env, *self._resolve_secrets(spec.secrets)}):
            wrapped += ["-e", name]
        if spec.workdir:
            wrapped += ["-w", spec.workdir]
        return [*wrapped, spec.image, *argv]

    def start(self, spec: TaskSpec, idempotency_key: str) -> str:
        self._check_image(spec.image)
        secrets = self._resolve_secrets(spec.secrets)
        ref = idempotency_key
        cwd = None if spec.image else (spec.workdir or os.getcwd())
        # everything computed before the write lock is taken: a burst of starts queues on that lock, and a
        # holder that the scheduler pre-empts mid-transaction (200 processes on 2 cores) makes all wait
        row = (
            ref,
            spec.execution_id,
            time.time(),
            json.dumps(self.command_argv(spec)),
            json.dumps(spec.env),
            json.dumps(sorted(secrets)),
            cwd,
            spec.timeout,
            spec.stop_grace,
            json.dumps({**spec.labels, STORE_LABEL: self.store_id}),
            spec.image,
        )
        conn = self._state.get()
        with db.write(conn):
            created = (
                conn.execute(
                    "INSERT INTO tasks (id, execution_id, created_at, argv, env, secret_names, cwd, timeout, "
                    "grace, labels, image) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    row,
                ).rowcount
                == 1
            )
        if not created:
            return ref
        # the supervisor itself keeps the caller's environment (its Python may need PYTHONPATH...); it
        # gives the command only the names the env rule passes (decision 0209)
        passed = envrule.passed_names(os.environ, self.config.pass_env, self.config.secret_env_prefix)
        if spec.image:  # podman runs with the caller's environment (DBUS_*, CONTAINERS_*...); the container
            # gets only the -e names of command_argv, so the rule holds inside it all the same
            passed = envrule.passed_names(os.environ, ["*"], "")
        added = {**secrets, HOME_ENV: str(self.home), PASSED_ENV: json.dumps(passed)}
        ahead = standby.take()
        if ahead is not None:  # a supervisor the CLI started ahead, waiting for these orders (decision 0213)
            pid, orders_pipe = ahead
            orders = json.dumps({"task": ref, "env": added}).encode() + b"\n"
            if standby.give_orders(orders_pipe, orders):
                return self._started(ref, _Spawned(pid))
        env = {**os.environ, **added}
        try:
            child = subprocess.Popen(
                [sys.executable, "-S", "-c", BOOT, _PACKAGES_DIR, ref],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # survives the caller, and the caller's Ctrl-C
                close_fds=True,
            )
        except OSError as exc:
            with db.write(conn):
                conn.execute(
                    "UPDATE tasks SET finished_at = ?, failed_to_start = 1, error = ? WHERE id = ?",
                    (time.time(), f"cannot start the supervisor: {exc}", ref),
                )
            raise StartFailed(f"cannot start the local supervisor: {exc}") from None
        return self._started(ref, child)

    def _started(self, ref: str, child: subprocess.Popen[bytes] | _Spawned) -> str:
        conn = self._state.get()
        with _CHILDREN_LOCK:
            _CHILDREN[ref] = child
        # the supervisor records this itself too; writing it here closes the window before it does
        started = procinfo.start_time(child.pid)
        with db.write(conn):
            conn.execute(
                "UPDATE tasks SET sup_pid = COALESCE(sup_pid, ?), sup_start = COALESCE(sup_start, ?) WHERE id = ?",
                (child.pid, started, ref),
            )
        return ref

    # -- describe -----------------------------------------------------------------------------------------
    def _row(self, ref: str) -> dict[str, Any] | None:
        cur = self._state.get().execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (ref,))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def _reap(self, ref: str) -> None:
        with _CHILDREN_LOCK:
            child = _CHILDREN.get(ref)
            if child is not None and child.poll() is not None:
                del _CHILDREN[ref]

    def describe(self, ref: str) -> TaskState:
        self._reap(ref)
        row = self._row(ref)
        if row is None:
            return TaskState(
                ref=ref, phase=TaskPhase.UNKNOWN, reason=f"no local task {ref!r} on this machine"
            )
        if row["finished_at"] is not None:
            return self._ended_state(row)
        base: dict[str, Any] = {
            "ref": ref,
            "execution_id": row["execution_id"],
            "started_at": _dt(row["started_at"]),
            "billed_start": _dt(row["started_at"]),
            "detail": {"supervisor_pid": row["sup_pid"], "pid": row["pid"]},
        }
        if row["sup_pid"] is None:
            if time.time() - row["created_at"] < SPAWN_GRACE:
                return TaskState(phase=TaskPhase.PENDING, **base)
            return TaskState(phase=TaskPhase.UNKNOWN, reason="the local supervisor was never started", **base)
        if procinfo.is_alive(row["sup_pid"], row["sup_start"]):
            if row["pid"] is None:
                return TaskState(phase=TaskPhase.STARTING, **base)
            if row["stop_requested_at"] is not None:
                return TaskState(phase=TaskPhase.STOPPING, **base)
            return TaskState(phase=TaskPhase.RUNNING, **base)
        # the supervisor is gone: it may have written its outcome between our read and the liveness check
        row = self._row(ref)
        assert row is not None
        if row["finished_at"] is not None:
            return self._ended_state(row)
        if row["pid"] is None and row["stop_requested_at"] is not None:
            return TaskState(
                phase=TaskPhase.STOPPED,
                stopped_by_request=True,
                reason="stopped before it started",
                **base,
            )
        reason = f"the local supervisor (pid {row['sup_pid']}) ended without recording the outcome"
        if row["error"]:
            reason += f" ({row['error']})"
        if row["pid"] is not None and procinfo.is_alive(row["pid"], row["proc_start"]):
            # said as seen now: the runner stops it before it records the run LOST, and says so
            reason += f"; its command (pid {row['pid']}) was still running"
        return TaskState(phase=TaskPhase.UNKNOWN, reason=reason, **base)

    def _ended_state(self, row: dict[str, Any]) -> TaskState:
        reason = None
        grace = row["stop_grace"] if row["stop_grace"] is not None else row["grace"]
        if row["failed_to_start"]:
            reason = row["error"] or "failed to start"
        elif row["timed_out"]:
            reason = f"exceeded its timeout of {row['timeout']:g}s" if row["timeout"] else "timed out"
            if row["killed"]:
                reason += f"; did not stop within {row['grace']:g}s of SIGTERM, killed"
        elif row["stopped"] and row["pid"] is None:
            reason = "stopped before it started"
        elif row["stopped"] and row["stop_force"]:
            reason = "killed on request"
        elif row["stopped"] and row["killed"]:
            reason = f"stopped on request; did not stop within {grace:g}s of SIGTERM, killed"
        elif row["stopped"]:
            reason = "stopped on request"
            if row["signal"] is not None:
                reason += f" ({_signal_name(row['signal'])})"
        elif row["signal"] is not None:
            reason = f"terminated by {_signal_name(row['signal'])}"
        started = _dt(row["started_at"])
        stopped = _dt(row["finished_at"])
        return TaskState(
            ref=row["id"],
            execution_id=row["execution_id"],
            phase=TaskPhase.STOPPED,
            exit_code=row["exit_code"],
            signal=row["signal"],
            reason=reason,
            failed_to_start=bool(row["failed_to_start"]),
            timed_out=bool(row["timed_out"]),
            stopped_by_request=bool(row["stopped"]),
            started_at=started,
            stopped_at=stopped,
            billed_start=started,
            billed_stop=stopped if started else None,
            detail={"pid": row["pid"], "killed": bool(row["killed"])},
        )

    # -- waiting ------------------------------------------------------------------------------------------
    def wait(self, ref: str, timeout: float) -> TaskState:
        """Block until the task ends or ``timeout`` seconds pass; returns the state then.

        Cheap: it sleeps on the supervisor's exit (a pidfd, or the Popen of a supervisor this process
        started) instead of polling, so an attached run learns of the end within milliseconds.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            state = self.describe(ref)
            remaining = deadline - time.monotonic()
            if state.ended or remaining <= 0:
                return state
            self._sleep_on_supervisor(ref, state, min(remaining, 1.0))

    def _sleep_on_supervisor(self, ref: str, state: TaskState, timeout: float) -> None:
        with _CHILDREN_LOCK:
            child = _CHILDREN.get(ref)
        if child is not None:
            # a pidfd wakes us the moment it exits; Popen.wait(timeout) would poll, up to 50 ms late
            if child.poll() is None and not _sleep_on_pid(child.pid, timeout):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout)
            child.poll()  # reap it
            return
        pid = state.detail.get("supervisor_pid")
        if pid and state.phase != TaskPhase.PENDING and _sleep_on_pid(pid, timeout):
            return
        time.sleep(min(timeout, 0.02))

    # -- stop ---------------------------------------------------------------------------------------------
    def stop(self, ref: str, grace: float, *, force: bool = False) -> None:
        row = self._row(ref)
        if row is None:
            raise NotFound(f"no local task {ref!r} on this machine")
        if row["finished_at"] is not None:
            return
        conn = self._state.get()
        with db.write(conn):
            conn.execute(
                "UPDATE tasks SET stop_requested_at = COALESCE(stop_requested_at, ?), stop_grace = ?, "
                "stop_force = MAX(stop_force, ?) WHERE id = ?",
                (time.time(), max(grace, 0.0), int(force), ref),
            )
        row = self._row(ref)
        assert row is not None
        if row["finished_at"] is not None:
            return
        if procinfo.is_alive(row["sup_pid"], row["sup_start"]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(row["sup_pid"], signal.SIGTERM)
            if force:
                self._kill_group(row)
        elif force:
            self._kill_group(row)

    def _kill_group(self, row: dict[str, Any]) -> None:
        # only while the group leader is provably the process we started: a pid can be reused
        if row["pgid"] and procinfo.is_alive(row["pid"], row["proc_start"]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(row["pgid"], signal.SIGKILL)

    # -- find / list --------------------------------------------------------------------------------------
    def find(self, execution_id: str) -> str | None:
        row = (
            self._state.get()
            .execute(
                "SELECT id FROM tasks WHERE execution_id = ? ORDER BY created_at LIMIT 1", (execution_id,)
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def list_active(self) -> list[TaskState]:
        rows = self._state.get().execute(
            "SELECT id, labels FROM tasks WHERE finished_at IS NULL ORDER BY created_at"
        )
        stores = {ref: json.loads(labels or "{}").get(STORE_LABEL) for ref, labels in rows}
        states = [self.describe(ref).model_copy(update={"store_id": stores[ref]}) for ref in stores]
        return [s for s in states if not s.ended]

    def cleanup(self, ref: str) -> None:
        """Kill what a task whose supervisor died left behind (a supervised command is already gone)."""
        self._reap(ref)
        row = self._row(ref)
        if row is None or row["finished_at"] is not None:
            return
        if row["sup_pid"] is not None and not procinfo.is_alive(row["sup_pid"], row["sup_start"]):
            self._kill_group(row)


def _sleep_on_pid(pid: int, timeout: float) -> bool:
    """Sleep until process ``pid`` exits or ``timeout`` passes; False where pidfds are not available
    (not Linux >= 5.3) or the process is already gone."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return False
    try:
        fd = pidfd_open(pid)
    except OSError:
        return False
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return True


class _Spawned:
    """A supervisor this process started ahead (standby.py), with the part of Popen's interface used here."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                done, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere
                self.returncode = 0
                return self.returncode
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout or 0.0)
            if not _sleep_on_pid(self.pid, 1.0 if remaining is None else min(remaining, 1.0)):
                time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode
