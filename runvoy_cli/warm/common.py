"""What the warm client and server share: where the socket lives, what makes a server fit, and the framing.

Standard library only, and only modules already loaded at start-up (``os``, ``sys``, ``marshal``, ``zlib``),
because the client runs before anything else is imported.
"""

from __future__ import annotations

import os
import sys

PROTOCOL = 1
DISABLE_ENV = "RUNVOY_WARM"
"""``RUNVOY_WARM=0`` turns the warm process off: every command starts cold."""
TRACE_ENV = "RUNVOY_WARM_TRACE"
"""A file a warm child appends its command line to (how the tests see which path served a command)."""
IDLE_ENV = "RUNVOY_WARM_IDLE"
IDLE_SECONDS = 600.0
"""A server with nothing to do for this long exits (``RUNVOY_WARM_IDLE``: 1 to 86400 seconds)."""
IDLE_BOUNDS = (1.0, 86400.0)
MAX_REQUEST = 4 << 20
"""Command line + environment: far above any real one; a bigger request is refused, not read."""

# what the server tells the client, 1 byte + a signed 32-bit value
PID = b"P"
STATUS = b"X"
STALE = b"S"

COMMANDS = frozenset(
    {
        "run",
        "status",
        "logs",
        "list",
        "kill",
        "wait",
        "reconcile",
        "locks",
        "cost",
        "budget",
        "providers",
        "config",
    }
)
"""The commands a warm process serves: none of them prompts or opens the terminal itself (a forked child has
no controlling terminal, so a password prompt could not hide what is typed)."""


def enabled() -> bool:
    """Off only for ``RUNVOY_WARM=0|false|no|off`` (any case, spaces around ignored), or where Python cannot
    fork; any other value, or none, is on."""
    value = os.environ.get(DISABLE_ENV, "").strip().lower()
    return value not in ("0", "false", "no", "off") and hasattr(os, "fork") and hasattr(os, "posix_spawn")


def idle_seconds() -> float:
    """``RUNVOY_WARM_IDLE`` as seconds, within IDLE_BOUNDS; the default when unset or not a number."""
    try:
        value = float(os.environ.get(IDLE_ENV, ""))
    except ValueError:
        return IDLE_SECONDS
    if value != value:  # NaN
        return IDLE_SECONDS
    return min(max(value, IDLE_BOUNDS[0]), IDLE_BOUNDS[1])


def fingerprint() -> str:
    """Everything that decides which code a process runs, how the interpreter behaves, and what the process
    may do: a server serves only clients whose fingerprint is its own. Besides the interpreter, that is the
    process's identity and confinement — user and groups, resource limits, priority, control group and
    namespaces — which a forked child keeps from the server, not from its caller: a command started under
    `ulimit`, `nice`, `systemd-run` or in another container gets a server started there."""
    python_env = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("PYTHON"))
    try:
        here = os.stat(__file__)
        stamp = f"{here.st_mtime_ns}:{here.st_size}"
    except OSError:
        stamp = "?"
    return repr(
        (
            PROTOCOL,
            sys.executable,
            sys.version,
            sys.path,
            tuple(sys.flags),
            sorted(sys._xoptions.items()),
            sys.warnoptions,
            python_env,
            stamp,
            _confinement(),
        )
    )


def _confinement() -> tuple[object, ...]:
    import resource

    limits = [
        resource.getrlimit(getattr(resource, name))
        for name in sorted(dir(resource))
        if name.startswith("RLIMIT_")
    ]
    try:
        priority: object = os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        priority = None
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as cgroup:
            group = cgroup.read()
    except OSError:
        group = None
    spaces: list[str | None] = []
    for name in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts"):
        try:
            spaces.append(os.readlink(f"/proc/self/ns/{name}"))
        except OSError:
            spaces.append(None)
    return (
        os.getuid(),
        os.geteuid(),
        os.getgid(),
        os.getegid(),
        sorted(os.getgroups()),
        limits,
        priority,
        group,
        spaces,
    )


def socket_dir() -> str:
    """A directory of this user's only: ``$XDG_RUNTIME_DIR/runvoy`` where the session has one, else
    ``<tmp>/runvoy-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "runvoy")
    tmp = os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(tmp, f"runvoy-{os.getuid()}")


def private_dir(path: str, *, create: bool) -> bool:
    """Whether ``path`` is a directory owned by this user that nobody else can enter (made so if missing
    and ``create``). A directory someone else could write to would let them answer in the server's place."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return False
    try:
        info = os.lstat(path)
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077 == 0


def paths(print_: str) -> tuple[str, str]:
    """(socket, lock file) for a fingerprint; short names, since a socket path is limited to ~100 bytes."""
    import zlib

    key = f"{zlib.crc32(print_.encode()):08x}"
    base = os.path.join(socket_dir(), f"w{key}")
    return base + ".sock", base + ".lock"


def pack_int(tag: bytes, value: int) -> bytes:
    return tag + value.to_bytes(4, "big", signed=True)


def unpack_int(data: bytes) -> tuple[bytes, int]:
    return data[:1], int.from_bytes(data[1:5], "big", signed=True)


def fds_bytes(fds: list[int]) -> bytes:
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def fds_from(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 4], sys.byteorder, signed=True) for i in range(0, len(data) - 3, 4)]
