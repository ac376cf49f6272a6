"""Parsing of human quantities: memory (``512MiB``, ``2GiB``), cpu (``0.25``, ``500m``) and durations
(``90s``, ``10m``, ``2h``, ``1h30m``). Each parser raises ``ValueError`` with the accepted form, which
pydantic turns into a field-named validation error."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_MEMORY_UNITS = {
    "": 1,  # a bare number is MiB
    "mib": 1,
    "mi": 1,
    "mb": 1,
    "m": 1,
    "gib": 1024,
    "gi": 1024,
    "gb": 1024,
    "g": 1024,
    "tib": 1024 * 1024,
    "ti": 1024 * 1024,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
MEMORY_FORM = "a size such as 512MiB, 2GiB or 1.5GiB (a bare number is MiB)"

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_FORM = "a positive duration such as 90s, 10m, 2h or 1h30m (a bare number is seconds)"

CPU_FORM = "a positive number of vCPU such as 0.25, 1 or 2 (or millicores such as 500m)"


def parse_memory_mib(value: object) -> int:
    """Return mebibytes. GB is treated as GiB, as the clouds bill it (GB = 1024^3 bytes)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {MEMORY_FORM}")
    if isinstance(value, int | float):
        number, unit = Decimal(str(value)), ""
    else:
        match = _MEMORY_RE.match(str(value))
        if not match or match.group(2).lower() not in _MEMORY_UNITS:
            raise ValueError(f"{value!r} is not {MEMORY_FORM}")
        number, unit = Decimal(match.group(1)), match.group(2).lower()
    mib = number * _MEMORY_UNITS[unit]
    if mib <= 0 or mib != mib.to_integral_value():
        raise ValueError(f"{value!r} must be a positive whole number of MiB; expected {MEMORY_FORM}")
    return int(mib)


def format_memory(mib: int) -> str:
    if mib % 1024 == 0:
        return f"{mib // 1024}GiB"
    return f"{mib}MiB"


def parse_cpu(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected {CPU_FORM}")
    text = str(value).strip()
    try:
        cpu = Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not {CPU_FORM}") from None
    if not cpu.is_finite() or cpu <= 0:
        raise ValueError(f"{value!r} is not {CPU_FORM}")
    return cpu.normalize() if cpu == cpu.to_integral_value() else cpu


def parse_duration(value: object) -> float:
    """Return seconds (> 0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_FORM}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not {DURATION_FORM}")
            seconds = sum(float(n) * _DURATION_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{value!r} is not {DURATION_FORM}")
    return seconds


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
