"""The detached supervisor of one local task: ``python -m runvoy_core.providers.local.supervisor <task id>``.

Started by LocalCompute.start in its own session with stdio on /dev/null, so it outlives the CLI that
started it. It reads its orders (argv, env, cwd, timeout, grace) from the task row, runs the command under
ManagedProcess, writes every chunk of output into logs.db and, at the end, the outcome into the task row.

SIGTERM asks for a graceful stop: the grace period to use is read from the task row (LocalCompute.stop
writes it before signalling). Secret values arrive only in this process's environment, never in SQLite.

Imports only the standard library and the two local modules below: the supervisor's start-up time is part
of every local run's latency.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

from runvoy_core.providers.local import db, procinfo
from runvoy_core.providers.local.process import ExitInfo, ManagedProcess

HOME_ENV = "RUNVOY_SUPERVISOR_HOME"
"""Where the supervisor finds its databases; removed from the command's environment."""


class Supervisor:
    def __init__(self, home: Path, task_id: str) -> None:
        self.home = home
        self.task_id = task_id
        self.state = db.connect_state(home)
        self.logs = db.connect_logs(home)
        self.seq = 0
        self.term_requested = False
        self.execution_id = task_id

    # -- signals --------------------------------------------------------------------------------------
    def _on_term(self, signum: int, frame: object) -> None:
        self.term_requested = True

    def should_stop(self) -> float | None:
        """Polled by ManagedProcess.run: the grace period once a stop was asked for."""
        if not self.term_requested:
            return None
        row = self.state.execute(
            "SELECT stop_grace, stop_force FROM tasks WHERE id = ?", (self.task_id,)
        ).fetchone()
        if row is None:
            return 0.0
        grace, force = row
        if force:
            return 0.0
        return 10.0 if grace is None else float(grace)

    # -- output ---------------------------------------------------------------------------------------
    def on_output(self, stream: str, timestamp: float, data: bytes) -> None:
        self.seq += 1
        # autocommit: one implicit transaction per chunk, the cheapest durable write SQLite offers
        self.logs.execute(
            "INSERT INTO chunks (execution_id, seq, stream, ts, data) VALUES (?, ?, ?, ?, ?)",
            (self.execution_id, self.seq, stream, timestamp, data),
        )

    # -- the run --------------------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        row = self.state.execute(
            "SELECT execution_id, argv, env, secret_names, cwd, timeout, grace, stop_requested_at "
            "FROM tasks WHERE id = ?",
            (self.task_id,),
        ).fetchone()
        if row is None:
            return 2
        execution_id, argv_json, env_json, secrets_json, cwd, timeout, grace, stop_requested_at = row
        self.execution_id = execution_id
        me = os.getpid()
        with db.write(self.state):
            self.state.execute(
                "UPDATE tasks SET sup_pid = ?, sup_start = ? WHERE id = ?",
                (me, procinfo.start_time(me), self.task_id),
            )
        if stop_requested_at is not None:
            # stopped before it could start: record that, run nothing
            now = time.time()
            self._finish(ExitInfo(None, None, now, now, stopped=True), error="stopped before it started")
            return 0

        env = dict(os.environ)
        env.pop(HOME_ENV, None)
        # secrets were resolved by the caller and handed over in this process's environment; the plain
        # values from the spec come from the row, and secrets win over them (a secret is never overridden)
        env.update(json.loads(env_json))
        for name in json.loads(secrets_json):
            if name in os.environ:
                env[name] = os.environ[name]
        process = ManagedProcess(
            json.loads(argv_json),
            env=env,
            cwd=cwd,
            on_output=self.on_output,
            timeout=timeout,
            grace=grace,
        )
        try:
            pid = process.start()
        except OSError as exc:
            now = time.time()
            message = f"cannot start {json.loads(argv_json)[0]!r}: {exc.strerror or exc}"
            self._finish(ExitInfo(127, None, now, now), error=message, failed_to_start=True)
            return 0
        with db.write(self.state):
            self.state.execute(
                "UPDATE tasks SET pid = ?, pgid = ?, proc_start = ?, started_at = ? WHERE id = ?",
                (pid, pid, procinfo.start_time(pid), process.started_at, self.task_id),
            )
        info = process.run(should_stop=self.should_stop, tick=0.05)
        self._finish(info)
        return 0

    def _finish(self, info: ExitInfo, *, error: str | None = None, failed_to_start: bool = False) -> None:
        for _ in range(50):
            try:
                with db.write(self.state):
                    self.state.execute(
                        "UPDATE tasks SET finished_at = ?, exit_code = ?, signal = ?, timed_out = ?, "
                        "stopped = CASE WHEN stop_requested_at IS NOT NULL THEN 1 ELSE ? END, "
                        "killed = ?, failed_to_start = ?, error = ? WHERE id = ?",
                        (
                            info.finished_at,
                            info.exit_code,
                            info.signal,
                            int(info.timed_out),
                            int(info.stopped and not info.timed_out),
                            int(info.killed),
                            int(failed_to_start),
                            error,
                            self.task_id,
                        ),
                    )
                return
            except sqlite3.OperationalError:  # locked past the busy timeout: the outcome must land
                time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    home = os.environ.get(HOME_ENV)
    if len(args) != 1 or not home:
        sys.stderr.write(f"usage: {HOME_ENV}=DIR python -m runvoy_core.providers.local.supervisor TASK_ID\n")
        return 2
    supervisor = Supervisor(Path(home), args[0])
    try:
        return supervisor.run()
    except Exception as exc:
        # nobody reads our stderr: leave the reason where describe() will find it
        try:
            with db.write(supervisor.state):
                supervisor.state.execute(
                    "UPDATE tasks SET error = ? WHERE id = ?",
                    (f"supervisor failed: {type(exc).__name__}: {exc}", supervisor.task_id),
                )
        except Exception:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
