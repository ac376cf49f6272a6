"""Runs one command in its own process group and captures its output line by line.

Shared by the local provider's supervisor and by the cloud simulator used in tests. Imports only the
standard library, and not subprocess or signal at import time: with locale, re and enum they are a fifth of
the supervisor's start-up, which 200 runs started at once pay 200 times (decision 0210). The supervisor
spawns through ``os.posix_spawn`` (``use_posix_spawn``); everything else, and the supervisor where
posix_spawn cannot do what Popen does, goes through subprocess, imported then.

Output is handed over in chunks of complete lines (``data`` ends with ``\\n``; a last line without a newline
gets one at EOF), all stamped with the time they were read: per-chunk work keeps capture throughput close to
the bare command's. For the same reason each stream is read into one reused buffer and handed over as a
memoryview of it: no allocation and no copy per read. The view is valid only during the callback; a
callback that keeps the data copies it.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py builds enums (and imports enum) at import
import contextlib
import errno
import os
import selectors
import time
from collections.abc import Callable

TYPE_CHECKING = False  # importing typing would cost the supervisor's start-up 3-5 ms
if TYPE_CHECKING:
    import subprocess

    from runvoy_core.providers.local.tree import Descendants

OutputCallback = Callable[[str, float, "bytes | memoryview"], None]
READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20  # Linux lets an unprivileged process grow a pipe to 1 MiB (fs.pipe-max-size)
F_SETPIPE_SZ = 1031
# No pause between reads in a flood: the callback writes each chunk to the log file before the next read,
# and the pipe fills meanwhile, so reads come in large pieces by themselves (a sleep to let the pipe fill
# measured 15-40 % slower: a full 1 MiB pipe blocks the writer, and waking it costs more than it saves).
# after the main process exits, how long to keep reading pipes held open by leftovers we could not kill
DRAIN_AFTER_EXIT = 1.0
# how long end_leftovers keeps trying once SIGKILL was sent (a process stuck in the kernel may not die)
KILL_WAIT = 5.0


class ExitInfo:
    """How the process ended. A plain class, not a dataclass: importing dataclasses (and with it inspect
    and ast) would add a fifth to the supervisor's start-up time."""

    __slots__ = ("exit_code", "finished_at", "killed", "signal", "started_at", "stopped", "timed_out")

    def __init__(
        self,
        exit_code: int | None,
        signal: int | None,
        started_at: float,
        finished_at: float,
        *,
        timed_out: bool = False,
        stopped: bool = False,
        killed: bool = False,
    ) -> None:
        self.exit_code = exit_code
        self.signal = signal
        self.started_at = started_at
        self.finished_at = finished_at
        self.timed_out = timed_out
        self.stopped = stopped  # a stop (graceful or kill) was requested
        self.killed = killed  # the group had to be SIGKILLed

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"ExitInfo({fields})"


def _grow_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, OSError):  # not Linux, or over the system's limit: the default size works too
        pass


class _Spawned:
    """What ManagedProcess uses of subprocess.Popen (pid, the two pipes, poll, wait), for a child started
    by ``os.posix_spawn``. ``returncode`` follows Popen: negative for a signal."""

    __slots__ = ("pid", "returncode", "stderr", "stdout")

    def __init__(self, pid: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout = open(stdout, "rb", buffering=0)  # noqa: SIM115 - closed by ManagedProcess.run
        self.stderr = open(stderr, "rb", buffering=0)  # noqa: SIM115

    def _reaped(self, options: int) -> int | None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:  # reaped elsewhere: as Popen, an unknown status reads as 0
            self.returncode = 0
            return 0
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode if self.returncode is not None else self._reaped(os.WNOHANG)

    def wait(self) -> int:
        while self.returncode is None:
            self._reaped(0)
        return self.returncode


def _posix_spawn(argv: list[str], env: dict[str, str] | None, cwd: str | None) -> _Spawned | None:
    """Start ``argv`` as Popen(stdin=DEVNULL, stdout=PIPE, stderr=PIPE, start_new_session=True,
    restore_signals=True) would; None where posix_spawn cannot (a working directory, which it cannot set
    before Python 3.13; no setsid support): the caller then uses Popen."""
    spawn = getattr(os, "posix_spawn", None)
    if spawn is None or cwd is not None:
        return None
    environ = os.environ if env is None else env
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        if min(out_w, err_w) < 3:  # dup2 onto itself would keep close-on-exec: the child's output lost
            raise NotImplementedError
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        name = argv[0]
        # Popen's search: the PATH of the child's environment; the first error other than "not there" wins
        paths = (
            [name] if os.path.dirname(name) else [os.path.join(d, name) for d in os.get_exec_path(environ)]
        )
        failure: OSError | None = None
        for path in paths:
            try:
                pid = spawn(
                    path,
                    argv,
                    environ,
                    file_actions=actions,
                    setsid=True,
                    setsigdef=(
                        signal.SIGPIPE,
                        signal.SIGXFSZ,
                    ),  # Python ignores SIGPIPE; the command must not
                )
                break
            except OSError as exc:
                if failure is None or failure.errno in (errno.ENOENT, errno.ENOTDIR):
                    failure = exc
        else:
            assert failure is not None
            raise OSError(failure.errno, failure.strerror, name)
    except NotImplementedError:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        return None
    except BaseException:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    os.close(out_w)
    os.close(err_w)
    return _Spawned(pid, out_r, err_r)


class _StreamBuffer:
    """One pipe's read buffer; ``filled`` bytes at its start are a line still waiting for its newline.

    Allocated at the first read: a zero-filled MiB is resident at once, and a quiet command (`sleep`) would
    make each of many supervisors 2 MiB larger for nothing."""

    __slots__ = ("buffer", "filled", "stream", "view")

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.buffer = _NO_BUFFER
        self.view = memoryview(self.buffer)
        self.filled = 0

    def allocate(self) -> None:
        self.buffer = bytearray(READ_SIZE)
        self.view = memoryview(self.buffer)


_NO_BUFFER = bytearray()
_EXITED = "exited"
"""Selector data of the pidfd that becomes readable when the command's main process exits."""
_WOKEN = "woken"
"""Selector data of the caller's wake-up fd (a signal arrived: check ``should_stop``)."""


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when ``pid`` exits; None where the system has none
    (not Linux >= 5.3)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(pid))
    except OSError:
        return None


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 512):
            pass


class ManagedProcess:
    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_output: OutputCallback,
        timeout: float | None = None,
        grace: float = 10.0,
        descendants: Descendants | None = None,
        use_posix_spawn: bool = False,
    ) -> None:
        """``descendants`` finds what the command left outside its process group; without it only the
        group is signalled (decision 0207). ``use_posix_spawn`` starts the command without importing
        subprocess where the system allows (the supervisor's start-up, decision 0210)."""
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.on_output = on_output
        self.timeout = timeout
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | _Spawned | None = None
        self.use_posix_spawn = use_posix_spawn
        self.started_at = 0.0
        self._stop_requested_at: float | None = None
        self._kill_at: float | None = None
        self._timed_out = False
        self._killed = False
        self.descendants = descendants

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> int:
        self.started_at = time.time()
        self.proc = _posix_spawn(self.argv, self.env, self.cwd) if self.use_posix_spawn else None
        if self.proc is None:
            import subprocess

            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own session and process group: signals reach the whole tree
                close_fds=True,
            )
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                _grow_pipe(pipe.fileno())
        return self.proc.pid

    # -- stopping -------------------------------------------------------------------------------------
    def request_stop(self, grace: float | None = None) -> None:
        """SIGTERM the group now, SIGKILL it after the grace period (checked by ``run``)."""
        if self._stop_requested_at is not None:
            return
        now = time.monotonic()
        self._stop_requested_at = now
        self._kill_at = now + (self.grace if grace is None else grace)
        self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        self._stop_requested_at = self._stop_requested_at or time.monotonic()
        self._kill_at = time.monotonic()
        self._killed = True
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: int) -> None:
        """The process group, then every descendant that left it."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        if self.descendants is not None:
            from runvoy_core.providers.local.tree import signal_all

            signal_all(self.descendants.current(), sig)

    def _next_timer(self, deadline: float | None, exit_seen_at: float | None) -> float | None:
        """Seconds until the loop has something to do without an event (None: nothing is due)."""
        due = []
        if deadline is not None and self._stop_requested_at is None:
            due.append(deadline)
        if self._kill_at is not None and exit_seen_at is None:
            due.append(self._kill_at)
        if exit_seen_at is not None:
            due.append(exit_seen_at + DRAIN_AFTER_EXIT)
        return max(0.0, min(due) - time.monotonic()) if due else None

    def end_leftovers(self) -> None:
        """After ``run``: wait for what the command left behind to end, SIGKILL it when the grace period
        that started with its SIGTERM is over (the process rule, decision 0207). Call it once the outcome is
        reported: it may take the grace period."""
        if self.descendants is None or self.proc is None:
            return
        kill_at = self._kill_at if self._kill_at is not None else time.monotonic()
        give_up = None
        while True:
            self.descendants.reap()
            left = self.descendants.current()
            if not left:
                return
            now = time.monotonic()
            if now >= kill_at:
                from runvoy_core.providers.local.tree import signal_all

                signal_all(left, signal.SIGKILL)
                give_up = give_up or now + KILL_WAIT
                if now >= give_up:
                    return
            time.sleep(0.02)

    # -- the loop -------------------------------------------------------------------------------------
    def _pump(self, fd: int, pending: _StreamBuffer) -> bool:
        """One read from a pipe: hand over the complete lines it finishes. False at EOF."""
        if not pending.buffer:
            pending.allocate()
        view, filled = pending.view, pending.filled
        got = os.readv(fd, [view[filled:]])
        if not got:
            if filled:
                self.on_output(pending.stream, time.time(), bytes(view[:filled]) + b"\n")
                pending.filled = 0
            return False
        total = filled + got
        cut = pending.buffer.rfind(b"\n", filled, total) + 1
        if cut:
            self.on_output(pending.stream, time.time(), view[:cut])
            view[: total - cut] = view[cut:total]  # the start of the next line moves to the front
            pending.filled = total - cut
        elif total == len(view):
            # a line as long as the buffer: hand it over rather than grow without bound
            self.on_output(pending.stream, time.time(), bytes(view) + b"\n")
            pending.filled = 0
        else:
            pending.filled = total
        return True

    def run(
        self,
        should_stop: Callable[[], float | None] | None = None,
        tick: float = 0.1,
        wake_fd: int | None = None,
    ) -> ExitInfo:
        """Pump output until the process ends; enforce the timeout and the stop escalation.

        ``should_stop`` returns a grace period once a stop has been asked for from outside (None otherwise).
        Without ``wake_fd`` it is polled every ``tick``, and so is the process's exit. With ``wake_fd`` (a
        non-blocking fd the caller makes readable when a stop may have been asked for, e.g. through
        ``signal.set_wakeup_fd``) and a pidfd for the exit, the loop sleeps until output, the exit, a wake-up
        or its next deadline: an idle supervisor costs no CPU, which many of them at once would otherwise
        take from the runs still starting.
        """
        assert self.proc is not None and self.proc.stdout is not None and self.proc.stderr is not None
        sel = selectors.DefaultSelector()
        for stream, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            os.set_blocking(pipe.fileno(), False)
            sel.register(pipe.fileno(), selectors.EVENT_READ, _StreamBuffer(stream))
        pipes = 2
        exit_fd = _pidfd(self.proc.pid) if wake_fd is not None else None
        idle = exit_fd is not None
        if exit_fd is not None and wake_fd is not None:
            sel.register(exit_fd, selectors.EVENT_READ, _EXITED)
            sel.register(wake_fd, selectors.EVENT_READ, _WOKEN)
        deadline = time.monotonic() + self.timeout if self.timeout else None
        exit_seen_at: float | None = None
        next_check = time.monotonic()
        exited = woken = True  # the first pass looks at everything

        try:
            # a command that closed its stdout and stderr still runs: its timeout and stops still apply
            while pipes or exit_seen_at is None:
                timeout = self._next_timer(deadline, exit_seen_at) if idle else tick
                for key, _ in sel.select(timeout=timeout):
                    if key.data is _EXITED:
                        sel.unregister(key.fd)  # stays readable from now on
                        exited = True
                    elif key.data is _WOKEN:
                        _drain(key.fd)
                        woken = True
                    else:
                        try:
                            if not self._pump(key.fd, key.data):
                                sel.unregister(key.fd)
                                pipes -= 1
                        except BlockingIOError:
                            continue
                now = time.monotonic()
                if not idle:
                    if now < next_check:
                        continue
                    next_check = now + tick
                    exited = woken = True
                if exited and exit_seen_at is None and self.proc.poll() is not None:
                    exit_seen_at = now
                    # the container rule: when the main process ends, whatever it left behind ends too
                    if self.descendants is None:
                        self._signal_group(signal.SIGKILL)
                    else:  # the process rule: SIGTERM now, SIGKILL after the grace (end_leftovers)
                        self._signal_group(signal.SIGTERM)
                        if self._kill_at is None:
                            self._kill_at = now + self.grace
                exited = False
                if exit_seen_at is not None and now - exit_seen_at >= DRAIN_AFTER_EXIT:
                    break
                if deadline is not None and now >= deadline and self._stop_requested_at is None:
                    self._timed_out = True
                    self.request_stop()
                if woken and should_stop is not None and self._stop_requested_at is None:
                    grace = should_stop()
                    if grace is not None:
                        if grace <= 0:
                            self.kill()
                        else:
                            self.request_stop(grace)
                woken = False
                if self._kill_at is not None and now >= self._kill_at and exit_seen_at is None:
                    self._killed = True
                    self._signal_group(signal.SIGKILL)
                    self._kill_at = now + 1.0  # and again, should something survive
        finally:
            if exit_fd is not None:
                os.close(exit_fd)
        sel.close()
        for pipe in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()
        returncode = self.proc.wait()
        if self.descendants is None:
            self._signal_group(signal.SIGKILL)
        elif should_stop is not None and self._stop_requested_at is None:
            # a stop that came with the main process's end (kill --force kills the group itself) still
            # sets how long its leftovers get, which is no time at all for a kill
            grace = should_stop()
            if grace is not None:
                self.kill() if grace <= 0 else self.request_stop(grace)
        finished = time.time()
        if returncode < 0:
            exit_code, sig = 128 - returncode, -returncode
        else:
            exit_code, sig = returncode, None
        return ExitInfo(
            exit_code=exit_code,
            signal=sig,
            started_at=self.started_at,
            finished_at=finished,
            timed_out=self._timed_out,
            stopped=self._stop_requested_at is not None,
            killed=self._killed,
        )
