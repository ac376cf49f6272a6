"""The console script's side of the warm process: hand the command to a resident server, relay signals, return
its exit status. Anything unexpected (no server, a stale one, a closed stdout) returns None and the command
starts cold in this process, so the warm path can only ever make a command faster, never different.

Standard library only (``_socket``, not ``socket``, which builds enums at import).
"""

from __future__ import annotations

import marshal
import os
import sys

from runvoy_cli.warm import common

TYPE_CHECKING = False  # not typing's: importing typing would cost the client more than all the rest
if TYPE_CHECKING:
    from collections.abc import Callable

FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def run(argv: list[str]) -> int | None:
    """Run ``argv`` (``sys.argv``) in the warm server; its exit status, or None to run it here instead."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            # a closed standard stream: the cold path knows how to behave then; checked before anything is
            # opened here, since a socket would take the free number and be passed on as that stream
            return None
    print_ = common.fingerprint()
    sock_path, lock_path = common.paths(print_)
    import _socket

    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        conn.connect(sock_path)
    except OSError:
        conn.close()
        start_server(print_, lock_path)
        return None
    try:
        return _served(conn, print_, argv)
    finally:
        conn.close()


def _served(conn: object, print_: str, argv: list[str]) -> int | None:
    import _socket

    assert isinstance(conn, _socket.socket)
    streams = [_stream_form(stream) for stream in (sys.stdin, sys.stdout, sys.stderr)]
    try:
        cwd = os.getcwd()
    except OSError:  # a deleted working directory: the cold path says so, as it always did
        return None
    # from here on a signal is the child's: until its pid is known it waits in the relay
    relay = _Relay()
    request = marshal.dumps(
        {
            "protocol": common.PROTOCOL,
            "fingerprint": print_,
            "argv": list(argv),
            "env": dict(os.environ),
            "cwd": cwd,
            "umask": _umask(),
            "streams": streams,
            "ignored": relay.ignored,
        }
    )
    if len(request) > common.MAX_REQUEST:
        relay.restore()
        relay.replay_here()
        return None
    try:
        try:
            conn.sendmsg(
                [len(request).to_bytes(4, "big"), request],
                [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, common.fds_bytes([0, 1, 2]))],
            )
            tag, pid = common.unpack_int(_read(conn, 5))
        except OSError:
            tag, pid = b"", 0
        if tag != common.PID:  # stale (the server is exiting) or gone: this command runs cold...
            relay.restore()
            relay.replay_here()  # ...unless it was interrupted meanwhile, as a cold one would have been
            return None
        relay.attach(pid)
        try:
            reply = _read(conn, 5)
        except OSError:
            reply = b""
    finally:
        relay.restore()
    if len(reply) == 5:
        tag, status = common.unpack_int(reply)
        if tag == common.STATUS:
            return status
    # the child ended without a status: killed by a signal. If we passed one on, die of it as a cold
    # process would have; else say so.
    if relay.last is not None:
        import _signal as signal  # the C module: signal.py builds enums at import

        signal.signal(relay.last, signal.SIG_DFL)
        os.kill(os.getpid(), relay.last)
    sys.stderr.write(
        "error: runvoy's process ended unexpectedly\nhint: run the command again with RUNVOY_WARM=0\n"
    )
    return 125


def _read(conn: object, size: int) -> bytes:
    import _socket

    assert isinstance(conn, _socket.socket)
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _stream_form(stream: object) -> tuple[str, str, bool, bool] | None:
    """How this process's standard stream would encode (the child rebuilds its own the same way)."""
    try:
        return (
            stream.encoding,  # type: ignore[attr-defined]
            stream.errors,  # type: ignore[attr-defined]
            bool(stream.line_buffering),  # type: ignore[attr-defined]
            bool(stream.write_through),  # type: ignore[attr-defined]
        )
    except AttributeError:
        return None


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


class _Relay:
    """Passes the signals a person or a program sends to this process on to the child that runs the command
    (INT, TERM, HUP, QUIT, USR1, USR2); Ctrl-Z stops both, and a continue continues both."""

    def __init__(self) -> None:
        import _signal as signal  # the C module: signal.py builds enums at import

        self.pid: int | None = None
        self.pending: list[int] = []
        self.last: int | None = None
        self.previous: dict[int, object] = {}
        self.ignored: list[int] = []
        """Signals this process was started ignoring (`nohup`, a shell's background job): not forwarded, and
        ignored by the child too, as a cold process would inherit them."""
        handlers: list[tuple[int | None, Callable[[int, object], None]]] = [
            (getattr(signal, name, None), self._forward) for name in FORWARDED
        ]
        handlers += [(signal.SIGTSTP, self._stop), (signal.SIGCONT, self._resume)]
        for number, handler in handlers:
            if number is None:
                continue
            if signal.getsignal(number) == signal.SIG_IGN:
                self.ignored.append(number)
                continue
            self.previous[number] = signal.signal(number, handler)

    def _send(self, signum: int) -> None:
        if self.pid is None:
            self.pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except OSError:
            pass

    def _forward(self, signum: int, _frame: object) -> None:
        self.last = signum
        self._send(signum)

    def _stop(self, _signum: int, _frame: object) -> None:
        import _signal as signal  # the C module: signal.py builds enums at import

        self._send(signal.SIGSTOP)
        os.kill(os.getpid(), signal.SIGSTOP)

    def _resume(self, _signum: int, _frame: object) -> None:
        import _signal as signal  # the C module: signal.py builds enums at import

        self._send(signal.SIGCONT)

    def attach(self, pid: int) -> None:
        self.pid = pid
        pending, self.pending = self.pending, []
        for signum in pending:
            self._send(signum)

    def restore(self) -> None:
        import _signal as signal  # the C module: signal.py builds enums at import

        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def replay_here(self) -> None:
        """The signals that came while no child was known, as this process would have taken them."""
        import _signal as signal  # the C module: signal.py builds enums at import

        for signum in self.pending:
            if signum in (signal.SIGSTOP, signal.SIGCONT):
                continue
            if signum == signal.SIGINT:
                sys.stderr.write("interrupted\n")
                os._exit(130)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


BOOT = (
    "import sys, marshal; sys.path[:] = marshal.loads(bytes.fromhex(sys.argv[1])); "
    "from runvoy_cli.warm.server import main; main(sys.argv[2])"
)


def start_server(print_: str, lock_path: str) -> None:
    """Start a server for this fingerprint in the background, unless one is starting already (it holds the
    lock for its whole life). Never raises: without a server, commands run cold."""
    directory = os.path.dirname(lock_path)
    if not common.private_dir(directory, create=True):
        return
    try:
        import fcntl

        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # a server holds it: it is starting, or exiting
        finally:
            os.close(fd)
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-c", BOOT, marshal.dumps(list(sys.path)).hex(), print_],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
            setsid=True,
        )
    except (OSError, AttributeError, NotImplementedError):
        return
