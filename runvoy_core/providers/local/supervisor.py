"""The detached supervisor of one local task: ``python -m runvoy_core.providers.local.supervisor <task id>``.

Started by LocalCompute.start in its own session with stdio on /dev/null, so it outlives the CLI that
started it. It reads its orders (argv, env, cwd, timeout, grace) from the task row, runs the command under
ManagedProcess, writes every chunk of output into logs.db and, at the end, the outcome into the task row.

SIGTERM asks for a graceful stop: the grace period to use is read from the task row (LocalCompute.stop
writes it before signalling). Secret values arrive only in this process's environment, never in SQLite.
The command gets only the caller's variables named in PASSED_ENV (the env rule, decision 0209); on Linux
this process is the subreaper of everything the command starts, and ends all of it (the process rule,
decision 0207).

Imports only the standard library (not even typing or pathlib) and the local modules below: the supervisor's
start-up time is part of every local run's latency, and 200 runs started at once start 200 supervisors on a
machine that may have two cores (decision 0210). LocalCompute starts it with ``python -S`` and the directory
that holds runvoy_core (see BOOT) instead of ``-m``: site and runpy cost each supervisor ~5 ms of CPU.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums (and imports enum) at import
import os
import sqlite3
import sys
import threading
import time

from runvoy_core.providers.local import db, procinfo, tree
from runvoy_core.providers.local.process import ExitInfo, ManagedProcess

TYPE_CHECKING = False  # typing costs the supervisor's start-up 3-5 ms; mypy reads this name as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

BOOT = (
    "import sys; '' in sys.path and sys.path.remove(''); sys.path.append(sys.argv.pop(1)); "
    "from runvoy_core.providers.local.supervisor import main; import os; os._exit(main())"
)
"""``python -S -c BOOT <directory holding runvoy_core> <task id>``: how LocalCompute starts a supervisor.
One line, so that `ps` shows it whole. The directory goes last, where site would have put it (it may be a
site-packages whose other packages must not shadow the standard library); the caller's directory ('')
leaves sys.path, so nothing in it passes for a module the supervisor imports."""
HOME_ENV = "RUNVOY_SUPERVISOR_HOME"
"""Where the supervisor finds its databases; removed from the command's environment."""
MODULES_ENV = "RUNVOY_SUPERVISOR_MODULES_FILE"
"""For tests: a file where the supervisor writes the names of the modules it loaded, once its run is over."""
PASSED_ENV = "RUNVOY_SUPERVISOR_PASSED_ENV"
"""The JSON list of the caller's variables the command gets (the env rule, decision 0209)."""
MAX_ROW_BYTES = 1 << 20
COMMIT_EVERY = 0.005
"""At most one index commit per 5 ms: a quiet command's line is indexed at once, a flood of output in few
large rows (each commit rewrites a few SQLite pages; one per read made the index lag behind the bytes)."""
WAL_CHECKPOINT_PAGES = 4096
"""logs.db checkpoints every 16 MiB of output instead of SQLite's 4 MiB: each checkpoint syncs the disk,
and a flood of output would otherwise spend its time there."""


def _json_loads() -> Callable[[str], Any]:
    """json.loads for the task row's JSON (written by json.dumps), through the C scanner of the standard
    json package: importing the package imports re, and with it enum, ~6 ms of every supervisor's start-up
    (decision 0210). Where that scanner is missing (not CPython), the package itself."""
    try:
        from _json import make_scanner
    except ImportError:
        import json

        return json.loads

    class Settings:  # what json.decoder.JSONDecoder hands the scanner, with json.loads's defaults
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float  # "NaN", "Infinity": float() reads them as json.loads does

    scan = make_scanner(Settings())  # type: ignore[arg-type]  # typeshed asks for a scanner, C for settings

    def loads(text: str) -> Any:
        value, end = scan(text, 0)
        if text[end:].strip():
            raise ValueError(f"extra data after JSON at {end}")
        return value

    return loads


_loads = _json_loads()


class _IndexRow:
    __slots__ = ("length", "offset", "stream", "ts")

    def __init__(self, stream: str, ts: float, offset: int, length: int) -> None:
        self.stream, self.ts, self.offset, self.length = stream, ts, offset, length


class LogWriter:
    """Appends output chunks to the task's log file as they are read, and indexes them in logs.db from
    its own thread (SQLite releases the GIL while it writes, so reading the pipes and committing overlap).

    The bytes are written at once, from the buffer they were read into (the callback's memoryview is valid
    only during the call). The index rows queue up while the thread is busy; consecutive chunks of one
    stream merge into one row (up to MAX_ROW_BYTES) and commit together. A command that prints a line now
    and then gets one row per line at once; a flood of output gets a few large rows. A reader trusts only
    the index: bytes without an index row (a crash mid-write) are never shown.
    """

    def __init__(self, home: str, execution_id: str) -> None:
        self.home = home
        self.conn: sqlite3.Connection | None = None
        self.execution_id = execution_id
        self.path = db.log_file(home, execution_id)
        self._fd = -1
        self.offset = 0
        self.seq = 0
        self.error: str | None = None
        self._pending: list[_IndexRow] = []  # waiting for the thread
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def _open(self) -> None:
        """At the first output, not before: a quiet command's supervisor opens neither logs.db nor a log
        file and starts no thread (its start-up and its memory, times the runs started at once)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.offset = os.fstat(self._fd).st_size
        self._thread = threading.Thread(target=self._run, name="runvoy-log-writer", daemon=True)
        self._thread.start()

    def put(self, stream: str, timestamp: float, data: bytes | memoryview) -> None:
        if self._fd < 0:
            try:
                self._open()
            except OSError as exc:
                self.error = f"log output was lost: {exc.strerror}"
                return
        size = len(data)
        try:
            written = os.write(self._fd, data)
            while written < size:
                written += os.write(self._fd, data[written:])
        except OSError as exc:  # disk full: the index never points at bytes that are not there
            self.error = f"log output was lost: {exc.strerror}"
            self.offset = os.fstat(self._fd).st_size
            return
        offset = self.offset
        self.offset += size
        with self._cond:
            last = self._pending[-1] if self._pending else None
            if (
                last is not None
                and last.stream == stream
                and last.offset + last.length == offset
                and last.length + size <= MAX_ROW_BYTES
            ):
                last.length += size
            else:
                self._pending.append(_IndexRow(stream, timestamp, offset, size))
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)

    def checkpoint(self) -> None:
        """Fold logs.db's WAL back (once the outcome is recorded: nobody waits on this process then)."""
        if self.conn is not None:
            try:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass

    def _run(self) -> None:
        last_commit = 0.0
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                # let a flood gather into few rows (new rows notify; only close() cuts the wait short)
                ready_at = last_commit + COMMIT_EVERY
                while not self._closed and (wait := ready_at - time.monotonic()) > 0:
                    self._cond.wait(wait)
                batch, self._pending = self._pending, []
                closed = self._closed
            if batch:
                last_commit = time.monotonic()
                self._commit(batch)
            elif closed:
                return

    def _commit(self, batch: list[_IndexRow]) -> None:
        params = []
        for row in batch:
            self.seq += 1
            params.append((self.execution_id, self.seq, row.stream, row.ts, row.offset, row.length))
        failure: Exception | None = None
        for attempt in range(20):
            try:
                if self.conn is None:
                    self.conn = db.connect_logs(self.home)
                    self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
                with db.write(self.conn):
                    self.conn.executemany(
                        "INSERT INTO log_chunks (execution_id, seq, stream, ts, offset, length) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        params,
                    )
                return
            except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full...
                failure = exc
                time.sleep(min(0.05 * 2**attempt, 1.0))
            except sqlite3.Error as exc:  # logs.db is not a database (opened here, at the first output)
                failure = exc
                break
        self.error = f"{len(params)} log chunks were lost: {failure}"


class MaskedOutput:
    """The command's output with its secrets masked (runvoy_core.masking), still handed to the log writer
    in whole lines: a reader makes one event of each line of an index row. Each stream has its own masker;
    what a masker holds back (the start of a secret that may continue) and the rest of its line wait for
    the stream's next output, or the end."""

    __slots__ = ("_forms", "_maskers", "_partial", "_put")

    def __init__(self, put: Callable[[str, float, bytes | memoryview], None], forms: list[bytes]) -> None:
        self._put = put
        self._forms = forms
        self._maskers: dict[str, Any] = {}
        self._partial: dict[str, bytes] = {}

    @classmethod
    def for_values(
        cls, put: Callable[[str, float, bytes | memoryview], None], values: list[str]
    ) -> MaskedOutput | None:
        from runvoy_core.masking import secret_forms

        forms = secret_forms(values)
        return cls(put, forms) if forms else None

    def put(self, stream: str, timestamp: float, data: bytes | memoryview) -> None:
        masker = self._maskers.get(stream)
        if masker is None:
            from runvoy_core.masking import StreamMasker

            masker = self._maskers[stream] = StreamMasker(self._forms)
        out = self._partial.pop(stream, b"") + masker.feed(data)
        cut = out.rfind(b"\n") + 1
        if cut < len(out):
            self._partial[stream] = out[cut:]
        if cut:
            self._put(stream, timestamp, out[:cut] if cut < len(out) else out)

    def close(self) -> None:
        for stream, masker in self._maskers.items():
            rest = self._partial.pop(stream, b"") + masker.flush()
            if rest:
                self._put(stream, time.time(), rest if rest.endswith(b"\n") else rest + b"\n")


class Supervisor:
    def __init__(self, home: str, task_id: str) -> None:
        self.home = home
        self.task_id = task_id
        self.state = db.connect_state(home)
        self.writer: LogWriter | None = None
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

    # -- the run --------------------------------------------------------------------------------------
    def run(self) -> int:
        # a SIGTERM wakes ManagedProcess.run through this pipe: it sleeps until something happens
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        row = self.state.execute(
            "SELECT execution_id, argv, env, secret_names, cwd, timeout, grace, stop_requested_at, sup_pid "
            "FROM tasks WHERE id = ?",
            (self.task_id,),
        ).fetchone()
        if row is None:
            return 2
        execution_id, argv_json, env_json, secrets_json, cwd, timeout, grace, stop_requested_at, sup_pid = row
        self.execution_id = execution_id
        me = os.getpid()
        if sup_pid != me:  # LocalCompute.start records it too, mostly first: one write fewer per run
            mine = (me, procinfo.start_time(me), self.task_id)
            with db.write(self.state):
                self.state.execute("UPDATE tasks SET sup_pid = ?, sup_start = ? WHERE id = ?", mine)
        if stop_requested_at is not None:
            # stopped before it could start: record that, run nothing
            now = time.time()
            self._finish(ExitInfo(None, None, now, now, stopped=True), error="stopped before it started")
            return 0

        env = {
            name: os.environ[name]
            for name in _loads(os.environ.get(PASSED_ENV) or "[]")
            if name in os.environ
        }
        # secrets were resolved by the caller and handed over in this process's environment; the plain
        # values from the spec come from the row, and secrets win over them (a secret is never overridden)
        spec_env: dict[str, str] = _loads(env_json)
        env.update(spec_env)
        secret_values = []
        for name in _loads(secrets_json):
            if name in os.environ:
                env[name] = os.environ[name]
                secret_values.append(os.environ[name])
        # ...except by RUNVOY_*, which is runvoy's alone (decision 0208): only the spec's (the runner's) stand
        for name in [n for n in env if n.upper().startswith("RUNVOY_")]:
            del env[name]
        env.update((n, v) for n, v in spec_env.items() if n.upper().startswith("RUNVOY_"))
        self.writer = LogWriter(self.home, execution_id)
        on_output = self.writer.put
        masked: MaskedOutput | None = None
        if secret_values:  # masked before the bytes reach the log file (decision 1901); no cost without
            masked = MaskedOutput.for_values(self.writer.put, secret_values)
            if masked is not None:
                on_output = masked.put
        # the process rule (decision 0207): as the subreaper of everything the command starts, this process
        # finds and ends what left the process group; where it cannot be one, the group is all it ends
        descendants = tree.SubreaperTree() if tree.become_subreaper() and procinfo.has_proc() else None
        process = ManagedProcess(
            _loads(argv_json),
            env=env,
            cwd=None,  # set below: posix_spawn cannot, and this process runs only the command
            on_output=on_output,
            timeout=timeout,
            grace=grace,
            descendants=descendants,
            use_posix_spawn=True,
        )
        try:
            if cwd is not None:
                # what is imported from now on must not be looked for in the command's directory
                sys.path[:] = [os.path.abspath(entry) for entry in sys.path]
                os.chdir(cwd)
            pid = process.start()
        except OSError as exc:
            now = time.time()
            message = f"cannot start {_loads(argv_json)[0]!r}: {exc.strerror or exc}"
            self.writer.close()
            self._finish(ExitInfo(127, None, now, now), error=message, failed_to_start=True)
            return 0
        if descendants is not None:
            descendants.exclude = pid
        running = (pid, pid, procinfo.start_time(pid), process.started_at, self.task_id)
        with db.write(self.state):  # nothing computed under the write lock (see LocalCompute.start)
            self.state.execute(
                "UPDATE tasks SET pid = ?, pgid = ?, proc_start = ?, started_at = ? WHERE id = ?", running
            )
        try:
            info = process.run(should_stop=self.should_stop, tick=0.05, wake_fd=wake_r)
        finally:
            if masked is not None:
                masked.close()
            self.writer.close()  # every chunk is in logs.db before the outcome says the task ended
        self._finish(info, error=self.writer.error)
        self.writer.checkpoint()
        process.end_leftovers()  # after the outcome: the run ended when its main process did
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


def ahead() -> int:
    """A supervisor started before its task (standby.start_ahead): its orders come as one JSON line on stdin —
    ``{"task": ID, "env": {NAME: VALUE}}``, the variables a supervisor started for the task would have had
    added to its environment — once the task row exists. End of file instead: nothing to do."""
    line = b""
    try:
        while not line.endswith(b"\n"):
            chunk = os.read(0, 65536)
            if not chunk:
                break
            line += chunk
    except OSError:
        return 0
    if not line.strip():
        return 0
    orders = _loads(line.decode())
    os.environ.update(orders["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # as a supervisor started for its task: stdin on /dev/null
    os.close(null)
    return main([orders["task"]])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    home = os.environ.get(HOME_ENV)
    if len(args) != 1 or not home:
        sys.stderr.write(f"usage: {HOME_ENV}=DIR python -m runvoy_core.providers.local.supervisor TASK_ID\n")
        return 2
    supervisor = Supervisor(os.path.abspath(home), args[0])
    try:
        code = supervisor.run()
        if listing := os.environ.get(MODULES_ENV):
            with open(listing + ".part", "w", encoding="utf-8") as out:
                out.write("\n".join(sorted(sys.modules)))
            os.replace(listing + ".part", listing)
        return code
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
