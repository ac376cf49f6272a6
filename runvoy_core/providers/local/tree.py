"""Every descendant of a command, found and ended (standard library and ctypes only: the supervisor imports it).

A command can leave its process group (``setsid cmd &``, a double fork): signalling the group then misses it.
On Linux the supervisor makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``), so such an
orphan is re-parented to the supervisor instead of init, and the supervisor's whole process tree, read from
/proc, is the command's. A pid alone is not an identity: each process found is kept with its start time and
checked again right before it is signalled (decision 0207).

Elsewhere (no /proc, no prctl) nothing here finds anything and the process group is all that is ended.
"""

from __future__ import annotations

import contextlib
import os
import sys

from runvoy_core.providers.local import procinfo

TYPE_CHECKING = False  # typing itself costs the supervisor's start-up 3-5 ms; mypy reads this name as True

PR_SET_CHILD_SUBREAPER = 36
_PROC = "/proc"


def become_subreaper() -> bool:
    """Make this process the subreaper of its descendants; False where the system cannot (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _prctl_bare(PR_SET_CHILD_SUBREAPER, 1) == 0
    except (ImportError, OSError, AttributeError, TypeError):
        pass
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _prctl_bare(option: int, value: int) -> int:
    """prctl through _ctypes, the C half of ctypes: importing the ctypes package costs every local run
    3-19 ms of supervisor start-up on a loaded machine, this about 1 ms (decision 0207)."""
    import _ctypes

    class CInt(_ctypes._SimpleCData):  # type: ignore[type-arg]
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = CInt

    prctl = Function(_ctypes.dlsym(_ctypes.dlopen(None), "prctl"))  # type: ignore[arg-type]
    return int(prctl(option, value, 0, 0, 0))


def _children_file(pid: int) -> list[int] | None:
    """Children of every thread of ``pid`` (None when the kernel has no children files)."""
    try:
        tids = os.listdir(f"{_PROC}/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tids:
        try:
            with open(f"{_PROC}/{pid}/task/{tid}/children", "rb") as fh:
                found.extend(int(word) for word in fh.read().split())
        except FileNotFoundError:
            if os.path.isdir(f"{_PROC}/{pid}/task/{tid}"):
                return None  # the thread exists but the file does not: CONFIG_PROC_CHILDREN is off
        except OSError:
            continue
    return found


def _parents() -> dict[int, list[int]]:
    """Every process's children, from the parent pid in each /proc/PID/stat (the slow way)."""
    tree: dict[int, list[int]] = {}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        fields = procinfo.stat_fields(int(name))
        if fields is not None and len(fields) > 1:
            tree.setdefault(int(fields[1]), []).append(int(name))
    return tree


def descendants(root: int) -> dict[int, int]:
    """The live (not zombie) descendants of ``root``, each with its start time; ``root`` itself excluded."""
    if not procinfo.has_proc():
        return {}
    found: dict[int, int] = {}
    parents: dict[int, list[int]] | None = None
    todo = [root]
    while todo:
        pid = todo.pop()
        kids = _children_file(pid) if parents is None else parents.get(pid, [])
        if kids is None:
            parents = _parents()
            kids = parents.get(pid, [])
        for kid in kids:
            if kid in found or kid == root:
                continue
            fields = procinfo.stat_fields(kid)
            if fields is None or len(fields) < 20:
                continue
            todo.append(kid)  # a zombie has no children of its own, but costs nothing to look at
            if fields[0] not in ("Z", "X", "x"):
                found[kid] = int(fields[19])
    return found


def marked(entry: bytes) -> dict[int, int]:
    """The live processes whose environment holds ``entry`` (``NAME=value``), each with its start time."""
    if not procinfo.has_proc():
        return {}
    me = os.getpid()
    found: dict[int, int] = {}
    for name in os.listdir(_PROC):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"{_PROC}/{name}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:  # gone, or another user's
            continue
        if entry not in environ.split(b"\0"):
            continue
        fields = procinfo.stat_fields(int(name))
        if fields is not None and len(fields) >= 20 and fields[0] not in ("Z", "X", "x"):
            found[int(name)] = int(fields[19])
    return found


def signal_all(processes: dict[int, int], sig: int) -> None:
    """Signal each process that is still the one found (same start time); gone ones are skipped."""
    for pid, started in processes.items():
        if procinfo.start_time(pid) != started:
            continue  # ended, and the pid may already name another process
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


if TYPE_CHECKING:
    from typing import Protocol

    class Descendants(Protocol):
        """How ManagedProcess finds the processes a command left outside its process group."""

        def current(self) -> dict[int, int]:
            """The live ones now, each with its start time."""
            ...

        def reap(self) -> None:
            """Collect the exit status of those that ended and are this process's children."""
            ...


class SubreaperTree:
    """The supervisor's way: it is a subreaper and runs one command, so all of its descendants are the
    command's."""

    def __init__(self, exclude: int | None = None) -> None:
        self.exclude = exclude
        """The main command: subprocess reaps it (collecting it here would take its exit status)."""

    def current(self) -> dict[int, int]:
        return descendants(os.getpid())

    def reap(self) -> None:
        for kid in _children_file(os.getpid()) or []:
            if kid != self.exclude:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(kid, os.WNOHANG)


class MarkedProcesses:
    """The cloud simulator's way: it runs in a test process shared with other work, so it finds a task's
    processes by a variable only that task's environment holds (a command that clears its environment
    escapes the simulator; a real container does not let it)."""

    def __init__(self, name: str, value: str) -> None:
        self.entry = f"{name}={value}".encode()

    def current(self) -> dict[int, int]:
        return marked(self.entry)

    def reap(self) -> None:
        """Orphans are re-parented to init (not to this process), which reaps them."""
