"""Parsing of human quantities: memory (``512MiB``, ``2GiB``), cpu (``0.25``, ``500m``) and durations
(``90s``, ``10m``, ``2h``, ``1h30m``). Each parser raises ``ValueError`` with the accepted form, which
pydantic turns into a field-named validation error."""

from __future__ import annotations

import re
from decimal import Decimal

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
# ASCII digits only (re.ASCII: `\d` would take other scripts' digits) and a bounded number of them
_NUMBER = r"[0-9]{1,12}(?:\.[0-9]{1,9})?"
_MEMORY_RE = re.compile(rf"\s*({_NUMBER})\s*([a-zA-Z]*)\s*", re.ASCII)
MAX_MEMORY_MIB = 120 * 1024
"""The largest memory any provider offers (AWS Fargate: 120 GiB)."""
MEMORY_FORM = (
    "a size from 1MiB to 120GiB such as 512MiB, 2GiB or 1.5GiB (a bare number is MiB; a whole number of MiB)"
)

_DURATION_RE = re.compile(rf"({_NUMBER})(ms|s|m|h|d)", re.ASCII)
_DURATION_SECONDS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_DURATION_SECONDS["d"] = Decimal(86400)
MAX_DURATION = 3650 * 86400.0
"""No duration runvoy takes is longer than ten years; a longer one is a typo, and overflows datetimes."""
DURATION_FORM = "a positive duration such as 90s, 10m, 2h or 1h30m (a bare number is seconds)"

MIN_CPU = Decimal("0.001")
MAX_CPU = Decimal(16)
"""The largest size any provider offers (AWS Fargate: 16 vCPU)."""
CPU_FORM = (
    "a number of vCPU from 0.001 to 16 such as 0.25, 1 or 2 (or millicores such as 500m; at most 3 decimals)"
)


def _finite_number(value: object, form: str) -> Decimal:
    """An int/float/Decimal given by a program (API, TOML, YAML) as a Decimal; inf and nan refused."""
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)  # type: ignore[arg-type]
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number; expected {form}")
    return number


def parse_memory_mib(value: object) -> int:
    """Return mebibytes. GB is treated as GiB, as the clouds bill it (GB = 1024^3 bytes)."""
    if isinstance(value, bool):
        raise ValueError(f"expected {MEMORY_FORM}")
    if isinstance(value, int | float | Decimal):
        number, unit = _finite_number(value, MEMORY_FORM), ""
    else:
        match = _MEMORY_RE.fullmatch(str(value))
        if not match or match.group(2).lower() not in _MEMORY_UNITS:
            raise ValueError(f"{value!r} is not {MEMORY_FORM}")
        number, unit = Decimal(match.group(1)), match.group(2).lower()
    mib = number * _MEMORY_UNITS[unit]
    if mib <= 0 or mib != mib.to_integral_value() or mib > MAX_MEMORY_MIB:
        raise ValueError(f"{value!r} is not {MEMORY_FORM}")
    return int(mib)


def format_memory(mib: int) -> str:
    if mib % 1024 == 0:
        return f"{mib // 1024}GiB"
    return f"{mib}MiB"


def parse_cpu(value: object) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"expected {CPU_FORM}")
    if isinstance(value, int | float | Decimal):
        cpu = _finite_number(value, CPU_FORM)
    else:
        text = str(value).strip()
        match = re.fullmatch(rf"({_NUMBER})(m?)", text, re.ASCII)
        if not match:
            raise ValueError(f"{value!r} is not {CPU_FORM}")
        cpu = Decimal(match.group(1)) / 1000 if match.group(2) else Decimal(match.group(1))
    if cpu < MIN_CPU or cpu > MAX_CPU or cpu != cpu.quantize(MIN_CPU):
        raise ValueError(f"{value!r} is not {CPU_FORM}")
    return cpu.normalize() if cpu == cpu.to_integral_value() else cpu


def parse_duration(
    value: object, *, low: float = 0.0, high: float = MAX_DURATION, form: str = DURATION_FORM
) -> float:
    """Return seconds: more than 0, at least ``low`` and at most ``high``."""
    if isinstance(value, bool):
        raise ValueError(f"expected {form}")
    if isinstance(value, int | float | Decimal):
        seconds = _finite_number(value, form)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if re.fullmatch(_NUMBER, text, re.ASCII):
            seconds = Decimal(text)
        else:
            parts = _DURATION_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not {form}")
            seconds = sum((Decimal(n) * _DURATION_SECONDS[u] for n, u in parts), Decimal(0))
    if seconds <= 0 or seconds < Decimal(str(low)) or seconds > Decimal(str(high)):
        raise ValueError(f"{value!r} is not {form}")
    return float(seconds)


def format_bound(seconds: float) -> str:
    """A duration bound for a message: 0.1s, 1s, 5m, 1h, 30d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


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
