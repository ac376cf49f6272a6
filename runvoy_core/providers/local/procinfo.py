"""Is a process still the one we started? (standard library only; the supervisor imports it.)

A pid alone is not an identity: after a process ends its pid can be reused. Linux gives every process a
start time (``/proc/<pid>/stat`` field 22, in clock ticks since boot) that, together with the pid, names
one process for the life of the machine. Where /proc is missing (macOS) we fall back to ``kill(pid, 0)``.
"""

from __future__ import annotations

import os

_PROC = "/proc"


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    # the command name (field 2) sits in parentheses and may itself contain spaces and ')'
    return raw[raw.rfind(")") + 2 :].split()


def has_proc() -> bool:
    return os.path.isdir(f"{_PROC}/self")


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it does not exist (or no /proc)."""
    fields = stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])


def is_alive(pid: int | None, expected_start: int | None = None) -> bool:
    """True while ``pid`` runs and is the process that had ``expected_start`` (zombies count as ended)."""
    if not pid or pid <= 0:
        return False
    if has_proc():
        fields = stat_fields(pid)
        if fields is None:
            return False
        if fields[0] in ("Z", "X", "x"):
            return False
        return expected_start is None or int(fields[19]) == expected_start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
