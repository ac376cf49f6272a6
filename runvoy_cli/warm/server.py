"""The resident side of the warm process: import runvoy once, then fork a child per command.

One server per fingerprint (interpreter, ``sys.path``, flags, ``PYTHON*`` variables), holding a lock file for
its whole life so that a second one exits at once. It is single-threaded — a fork copies only the calling
thread, so a server with threads could hand a child a lock held by a thread that does not exist there — and
it does not wait for its children (SIGCHLD ignored: the kernel reaps them); each child reports its own exit
status on the connection it was forked for. With nothing to do for ``IDLE_SECONDS`` it exits, as it does
when a file of runvoy's changes under it (an upgrade, an edit in a checkout): the next command starts cold
and starts a new server.
"""

from __future__ import annotations

import marshal
import os
import signal
import socket
import sys

from runvoy_cli.warm import common

PRELOAD = (
    "runvoy_cli.main",
    "runvoy_cli.commands.run",
    "runvoy_cli.commands.status",
    "runvoy_cli.commands.logs",
    "runvoy_cli.commands.listing",
    "runvoy_cli.commands.locks",
    "runvoy_cli.commands.cost",
    "runvoy_cli.commands.config",
    "runvoy_cli.commands.providers",
    "runvoy_cli.commands.kill",
    "runvoy_cli.commands.wait",
    "runvoy_cli.views",
    "runvoy_cli.streams",
    "runvoy_core.api",
    "runvoy_core.config",
    "runvoy_core.runner",
    "runvoy_core.logging",
    "runvoy_core.plugins.manager",
    "runvoy_core.providers.local.plugin",
    "runvoy_core.providers.local.compute",
    "runvoy_core.providers.local.store",
    "runvoy_core.providers.local.logs",
    "runvoy_core.providers.local.register",
    "runvoy_core.cost.calculator",
    "runvoy_core.cost.rollups",
    "runvoy_core.cost.budgets",
    "runvoy_cli.entry",
    "runvoy_core.locks",
    "runvoy_core.lock_queue",
    "runvoy_core.metrics",
    "runvoy_core.secrets",
    "runvoy_core.team.context",  # a run's user is its caller's (the runner asks on every run)
    "runvoy_core.providers.local.provider",
    "runvoy_core.providers.local.pricing",
    "runvoy_core.providers.local.costs",
    "json",
    "subprocess",
    "platformdirs",
    "tempfile",
    "shlex",
    "hashlib",
    "tomllib",
    "importlib.resources",
    "importlib.readers",
    "zipfile",
)
"""What every warm child finds imported: the CLI and the local provider. Imports only — nothing here may
read the environment or a file at import, since each command brings its own. Cloud SDKs are left to the
command that needs one."""


def main(print_: str) -> None:
    try:
        os.chdir("/")  # do not keep the first caller's directory busy
    except OSError:
        pass
    if common.fingerprint() != print_:
        return  # this interpreter is not the one the client runs: serving it would change behaviour
    sock_path, lock_path = common.paths(print_)
    if not common.private_dir(os.path.dirname(sock_path), create=False):
        return
    import fcntl

    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server for this fingerprint
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())  # who serves: for `kill`, and for the tests
    import importlib

    for name in (*PRELOAD, *_plugin_modules()):
        try:
            importlib.import_module(name)
        except Exception:  # a module that fails to import fails the same way in the child, cold
            pass
    watched = _watched_files()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = f"{sock_path}.{os.getpid()}"
    try:
        os.unlink(temporary)
    except FileNotFoundError:
        pass
    old_mask = os.umask(0o177)
    try:
        listener.bind(temporary)
    finally:
        os.umask(old_mask)
    listener.listen(1024)  # a burst of commands queues here rather than failing
    os.replace(temporary, sock_path)  # atomically ours; a stale socket of a dead server is replaced
    mine = os.stat(sock_path).st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener.settimeout(common.idle_seconds())
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return
            except InterruptedError:
                continue
            try:
                if _changed(watched):
                    conn.sendall(common.pack_int(common.STALE, 0))
                    return
                _serve(conn, listener, print_)
            except OSError:
                pass
            finally:
                conn.close()
    finally:
        try:
            if os.stat(sock_path).st_ino == mine:
                os.unlink(sock_path)
        except OSError:
            pass


def _plugin_modules() -> list[str]:
    """The modules the installed provider plugins register from (``runvoy`` entry points), and the price
    tables they ship: every command loads them. Their cloud SDKs stay out (they import them lazily)."""
    from importlib.metadata import entry_points

    names: list[str] = []
    for point in entry_points(group="runvoy"):
        module = point.value.partition(":")[0]
        names.append(module)
        names.append(module.rpartition(".")[0] + ".pricing")
    return names


def _watched_files() -> dict[str, tuple[int, int]]:
    """runvoy's own source files this process imported, with their modification stamps."""
    files: dict[str, tuple[int, int]] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith(("runvoy_cli", "runvoy_core")):
            continue
        path = getattr(module, "__file__", None)
        if path:
            try:
                info = os.stat(path)
            except OSError:
                continue
            files[path] = (info.st_mtime_ns, info.st_size)
    return files


def _changed(watched: dict[str, tuple[int, int]]) -> bool:
    for path, stamp in watched.items():
        try:
            info = os.stat(path)
        except OSError:
            return True
        if (info.st_mtime_ns, info.st_size) != stamp:
            return True
    return False


def _serve(conn: socket.socket, listener: socket.socket, print_: str) -> None:
    peer = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    if int.from_bytes(peer[4:8], sys.byteorder) != os.getuid():
        return  # only this user's commands (the directory is private too; this is the second lock)
    conn.settimeout(10.0)
    head, ancillary, _, _ = conn.recvmsg(4, socket.CMSG_SPACE(3 * 4))
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(common.fds_from(data))
    try:
        size = int.from_bytes(head, "big") if len(head) == 4 else -1
        if len(fds) != 3 or not 0 < size <= common.MAX_REQUEST:
            return
        body = b""
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                return
            body += chunk
        request = marshal.loads(body)
        if not isinstance(request, dict) or request.get("fingerprint") != print_:
            conn.sendall(common.pack_int(common.STALE, 0))
            return
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(conn, fds, request)  # never returns
    finally:
        for fd in fds:
            os.close(fd)


def _child(conn: socket.socket, fds: list[int], request: dict[str, object]) -> None:
    status = 125
    try:
        conn.settimeout(None)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        ignored = request.get("ignored")
        for number in ignored if isinstance(ignored, list) else ():
            signal.signal(int(number), signal.SIG_IGN)  # the caller started ignoring it (nohup): so does this
        for target, fd in enumerate(fds):
            os.dup2(fd, target, inheritable=True)
            os.close(fd)
        os.chdir(str(request["cwd"]))
        os.umask(int(request["umask"]))  # type: ignore[call-overload]
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update(env)
        import time

        time.tzset()
        _rebuild_streams(request.get("streams"))
        argv = request["argv"]
        assert isinstance(argv, list)
        sys.argv = [str(a) for a in argv]
        conn.sendall(common.pack_int(common.PID, os.getpid()))
        import threading

        threading.Thread(target=_die_with_caller, args=(conn,), daemon=True).start()
        trace = os.environ.get(common.TRACE_ENV)
        preloaded = set(sys.modules)

        from runvoy_cli import entry, main

        def report(code: int) -> None:
            if trace:  # the command line, and what this child had to import itself
                imported = sorted(set(sys.modules) - preloaded)
                times = os.times()
                cpu_ms = round((times.user + times.system) * 1000)
                with open(trace, "a", encoding="utf-8") as out:
                    out.write(f"{' '.join(sys.argv[1:])}\t{code}\t{' '.join(imported)}\t{cpu_ms}\n")
            try:
                conn.sendall(common.pack_int(common.STATUS, code))
            except OSError:
                pass

        main.before_exit = report
        entry.cold_main()
        status = 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        try:
            conn.sendall(common.pack_int(common.STATUS, status))
        except OSError:
            pass
    except BaseException:
        try:
            conn.sendall(common.pack_int(common.STATUS, 125))
        except OSError:
            pass
    os._exit(status)


def _die_with_caller(conn: socket.socket) -> None:
    """The caller sends nothing after its request: end of file means it is gone (killed, even with
    SIGKILL), and a command whose process was killed must not go on running, as a cold one would not."""
    try:
        while conn.recv(64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _rebuild_streams(forms: object) -> None:
    """The caller's stdin, stdout and stderr as Python would have opened them in the caller's process."""
    import io

    if not isinstance(forms, list) or len(forms) != 3:
        return
    for fd, form, name in zip((0, 1, 2), forms, ("stdin", "stdout", "stderr"), strict=True):
        if not isinstance(form, tuple) or len(form) != 4:
            continue
        encoding, errors, line_buffering, write_through = form
        raw = io.FileIO(fd, "rb" if fd == 0 else "wb", closefd=False)
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(
            buffered,
            encoding=encoding,
            errors=errors,
            line_buffering=line_buffering and fd != 0,
            write_through=write_through and fd != 0,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
