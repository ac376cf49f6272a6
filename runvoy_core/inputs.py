"""The accepted form of every value a person or a program gives runvoy, defined once.

Each ``Form`` is a name, the accepted form in words (shown in errors and in docs/inputs.md) and a parser
that returns the value or raises ``ValueError`` saying what is wrong. The CLI wraps them in click parameter
types (runvoy_cli/forms.py), the models, the config and the playbooks in pydantic types (runvoy_core/models.py),
so that the same value is accepted or refused the same way wherever it comes from.

Rules shared by every form: ASCII digits only (``int('٣')`` and ``Decimal('５')`` would accept other
scripts' digits), finite numbers only (no inf/nan), explicit bounds, no control characters and nothing that
is not valid Unicode text (a non-UTF-8 command-line argument arrives as lone surrogates).

Standard library only: the CLI parses its options before pydantic is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from runvoy_core import units

MAX_NESTING = 32
"""Deepest nesting of tables/lists accepted in a config file or a playbook (real ones use 3 or 4)."""
MAX_COMMAND_CHARS = 128 * 1024
"""Linux refuses a single argument longer than 128 KiB (MAX_ARG_STRLEN); a shell command is one."""
MAX_ENV_VALUE_CHARS = 32 * 1024
MAX_LABEL_VALUE_CHARS = 256
MAX_ITEMS = 256
"""At most this many --env, --label or --secret items (clouds cap tags and variables lower still)."""


MAX_NODES = 100_000
"""Most values (tables, lists, scalars) in a config file or playbook; YAML aliases can multiply them."""


def nesting_depth(data: Any) -> int:
    """How deeply dicts and lists nest in ``data``, more than MAX_NESTING as soon as that is certain;
    iterative (the data may be deeper than the stack) and bounded (YAML aliases can make a small file
    describe billions of values): more than MAX_NODES values count as too deep."""
    deepest = 0
    visited = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        visited += 1
        if visited > MAX_NODES:
            return MAX_NESTING + 1
        if isinstance(node, dict | list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_NESTING:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


class Form:
    """An accepted form: ``parse`` returns the value, or raises ValueError naming the problem.

    A plain class, and patterns compiled on first use (``re``'s cache): `runvoy --help` imports this module,
    and dataclasses plus two dozen compiled patterns would cost it ~10 ms."""

    __slots__ = ("name", "parse", "text")

    def __init__(self, name: str, text: str, parse: Callable[[Any], Any]) -> None:
        self.name = name
        self.text = text
        self.parse = parse

    def check(self, value: Any) -> Any:
        return self.parse(value)


def text_problem(value: str, *, allow_newlines: bool = False) -> str | None:
    """Why ``value`` cannot be stored or passed on as text (None when it can)."""
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        return "is not valid UTF-8 text"
    if "\x00" in value:
        return "contains a NUL character"
    allowed = "\n\t\r" if allow_newlines else ""
    if any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in value):
        return "contains a control character"
    return None


def _text(value: Any, what: str, *, allow_newlines: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text")
    problem = text_problem(value, allow_newlines=allow_newlines)
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


def _pattern_form(name: str, text: str, pattern: str) -> Form:
    def parse(value: Any) -> str:
        given = _text(value, name)
        if not re.fullmatch(pattern, given, re.ASCII):
            raise ValueError(f"{given!r} is not {text}")
        return given

    return Form(name, text, parse)


def _duration_form(name: str, low: float, high: float) -> Form:
    text = (
        f"a positive duration from {units.format_bound(low)} to {units.format_bound(high)}, such as 90s, 10m, 2h "
        "or 1h30m (a bare number is seconds)"
    )

    def parse(value: Any) -> float:
        return units.parse_duration(value, low=low, high=high, form=text)

    return Form(name, text, parse)


DAY = 86400.0

# -- durations ----------------------------------------------------------------------------------------------
RUN_TIMEOUT = _duration_form("run timeout", 0.1, 30 * DAY)
STOP_GRACE = _duration_form("stop grace", 0.1, 3600.0)
LOCK_TIMEOUT = _duration_form("lock timeout", 0.1, 7 * DAY)
WAIT_TIMEOUT = _duration_form("wait timeout", 0.1, 30 * DAY)
SINCE = _duration_form("since", 1.0, 3650 * DAY)
STEP_TIMEOUT = _duration_form("step timeout", 1.0, 30 * DAY)
ESTIMATE_DURATION = _duration_form("run duration", 1.0, 30 * DAY)
LOCK_LEASE = _duration_form("lock lease", 1.0, 3600.0)
POLL_INTERVAL_MAX = _duration_form("poll interval", 0.01, 300.0)
START_TIMEOUT = _duration_form("start timeout", 1.0, 7 * DAY)
WEBHOOK_TIMEOUT = _duration_form("webhook timeout", 0.1, 300.0)

# -- resources ---------------------------------------------------------------------------------------------
CPU = Form("cpu", units.CPU_FORM, units.parse_cpu)
MEMORY = Form("memory", units.MEMORY_FORM, units.parse_memory_mib)

# -- names ---------------------------------------------------------------------------------------------------
PROVIDER = _pattern_form(
    "provider",
    "a provider name such as local, aws, gcp or azure (a-z, 0-9, _ and -)",
    r"[a-z][a-z0-9_-]{0,31}",
)
PROFILE = _pattern_form(
    "profile",
    "a profile name: letters, digits, _ . - (at most 64, starting with a letter or digit)",
    r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
)
REGION = _pattern_form(
    "region",
    "a region such as eu-west-1, us-central1 or eastus (lowercase letters, digits and -)",
    r"[a-z0-9][a-z0-9-]{0,63}",
)
IMAGE = _pattern_form(
    "image",
    "a container image reference such as python:3.12 or ghcr.io/org/app@sha256:... (printable ASCII, "
    "no spaces, at most 512 characters)",
    r"[A-Za-z0-9][!-~]{0,511}",
)
LOCK_NAME = _pattern_form(
    "lock name",
    "a lock name: letters, digits, _ . : / - (at most 128, starting with a letter or digit)",
    r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}",
)
LOCK_REF = _pattern_form(
    "lock name",
    "a lock name (letters, digits, _ . : / -, at most 128) or one of its slots, NAME#N",
    r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}(#[0-9]{1,3})?",
)
EXECUTION_ID = _pattern_form(
    "execution id",
    "an execution id or a unique prefix of one (letters, digits, _ and -, at most 64)",
    r"[A-Za-z0-9_-]{1,64}",
)
SECRET_NAME = _pattern_form(
    "secret name", "a secret name: letters, digits, _ . / : - (at most 256)", r"[A-Za-z0-9_./:-]{1,256}"
)
ENV_NAME = _pattern_form(
    "environment variable name",
    "a variable name: letters, digits and _, not starting with a digit (at most 256)",
    r"[A-Za-z_][A-Za-z0-9_]{0,255}",
)
LABEL_KEY = _pattern_form(
    "label key",
    "a label key: lowercase letters, digits and _ . : / - (at most 63, starting with a letter or digit)",
    r"[a-z0-9][a-z0-9_.:/-]{0,62}",
)
BUDGET_NAME = _pattern_form(
    "budget name",
    "a budget name: letters, digits and _ . : - (at most 64, starting with a letter or digit)",
    r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}",
)
CURRENCY = _pattern_form("currency", "a three-letter currency code such as USD or EUR", r"[A-Za-z]{3}")


def _label_value(value: Any) -> str:
    text = _text(value, "label value")
    if len(text) > MAX_LABEL_VALUE_CHARS:
        raise ValueError(f"label value longer than {MAX_LABEL_VALUE_CHARS} characters")
    return text


LABEL_VALUE = Form(
    "label value",
    f"text without control characters, at most {MAX_LABEL_VALUE_CHARS} characters",
    _label_value,
)


def _env_value(value: Any) -> str:
    text = _text(value, "environment value", allow_newlines=True)
    if len(text) > MAX_ENV_VALUE_CHARS:
        raise ValueError(f"value longer than {MAX_ENV_VALUE_CHARS} characters")
    return text


ENV_VALUE = Form(
    "environment value", f"text without NUL, at most {MAX_ENV_VALUE_CHARS} characters", _env_value
)


def _pair(key: Form, val: Form, example: str, text: str) -> Form:

    def parse(value: Any) -> tuple[str, str]:
        given = _text(value, key.name, allow_newlines=True)
        name, sep, rest = given.partition("=")
        if not sep:
            raise ValueError(f"{given!r}: expected NAME=VALUE (for example {example})")
        for form, part in ((key, name), (val, rest)):
            try:
                form.parse(part)
            except ValueError as exc:
                raise ValueError(f"{form.name} {exc}") from None
        return name, rest

    return Form(f"{key.name}=value", text, parse)


ENV_PAIR = _pair(
    ENV_NAME,
    ENV_VALUE,
    "STAGE=prod",
    "NAME=VALUE, NAME made of letters, digits and _ (not starting with a digit), such as STAGE=prod",
)
LABEL_PAIR = _pair(
    LABEL_KEY,
    LABEL_VALUE,
    "team=data",
    "KEY=VALUE, KEY made of lowercase letters, digits and _ . : / - (at most 63), VALUE at most 256 "
    "characters, such as team=data",
)


def _command_word(value: Any) -> str:
    text = _text(value, "command", allow_newlines=True)
    if len(text) > MAX_COMMAND_CHARS:
        raise ValueError(f"longer than {MAX_COMMAND_CHARS // 1024} KiB")
    return text


COMMAND_WORD = Form(
    "command",
    f"text without NUL, at most {MAX_COMMAND_CHARS // 1024} KiB per argument",
    _command_word,
)


def _path(value: Any) -> str:
    text = _text(value, "path")
    if not text or len(text) > 4096:
        raise ValueError(f"{text!r} is not a path of 1 to 4096 characters")
    return text


PATH = Form("path", "a file or directory path (1 to 4096 characters, no control characters)", _path)


def _grep(value: Any) -> str:
    text = _text(value, "text")
    if not text or len(text) > 1000:
        raise ValueError(f"{text!r} is not 1 to 1000 characters of text")
    return text


GREP = Form("text", "1 to 1000 characters of text without control characters", _grep)

MAX_AMOUNT = Decimal(1_000_000_000)


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected an amount")
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]{1,10}(\.[0-9]{1,6})?", text, re.ASCII):
        raise ValueError(f"{value!r} is not an amount such as 50 or 12.50")
    amount = Decimal(text)
    if amount <= 0 or amount > MAX_AMOUNT:
        raise ValueError(f"{value!r} is not between 0 and {MAX_AMOUNT:,}")
    return amount


AMOUNT = Form("amount", "a positive amount such as 50 or 12.50 (at most 1,000,000,000)", _amount)


def _alert_at(value: Any) -> list[int]:
    text = _text(value, "thresholds")
    parts = [part.strip().removesuffix("%") for part in text.split(",")]
    if not 1 <= len(parts) <= 20 or not all(re.fullmatch(r"[0-9]{1,4}", p, re.ASCII) for p in parts):
        raise ValueError(f"{value!r} is not comma-separated percents such as 50,80,100")
    numbers = [int(p) for p in parts]
    if any(n < 1 or n > 1000 for n in numbers):
        raise ValueError(f"{value!r}: thresholds are percents from 1 to 1000")
    return numbers


ALERT_AT = Form("thresholds", "comma-separated percents from 1 to 1000, such as 50,80,100", _alert_at)


def _scope(value: Any) -> str:
    text = _text(value, "scope")
    kind, sep, rest = text.partition("=")
    if not sep or kind not in ("provider", "user", "label") or not rest.strip() or len(text) > 300:
        raise ValueError(f"{value!r} is not provider=NAME, user=NAME or label=KEY:VALUE")
    return text


SCOPE = Form("scope", "provider=NAME, user=NAME or label=KEY:VALUE (or label=KEY)", _scope)

MAX_SETTING_VALUE_CHARS = 4096


def _provider_setting(value: Any) -> tuple[str, str]:
    given = _text(value, "provider setting")
    key, sep, rest = given.partition("=")
    if not sep:
        raise ValueError(f"{given!r}: expected KEY=VALUE (for example endpoint_url=http://localhost:5000)")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", key, re.ASCII):
        raise ValueError(f"{key!r} is not a setting name (lowercase letters, digits and _, at most 64)")
    if len(rest) > MAX_SETTING_VALUE_CHARS:
        raise ValueError(f"the value of {key} is longer than {MAX_SETTING_VALUE_CHARS} characters")
    return key, rest


PROVIDER_SETTING = Form(
    "provider setting",
    "KEY=VALUE, KEY a key of the provider's config section (lowercase letters, digits and _, at most 64), "
    f"VALUE text without control characters (at most {MAX_SETTING_VALUE_CHARS}), such as "
    "endpoint_url=http://localhost:5000",
    _provider_setting,
)
"""One key of a ``[providers.NAME]`` section given on the command line (``runvoy init --set``); the value is
then checked by the provider's own config model."""


def _switch(value: Any) -> bool:
    if not isinstance(value, bool):  # "false" is truthy text and 0 a number: neither says what is meant
        raise ValueError(f"{value!r} is not true or false")
    return value


SWITCH = Form("switch", "true or false (a boolean, not text or a number)", _switch)
"""A yes/no keyword of the Python API or key of a playbook: ``image_check`` (``--no-image-check``)."""

ARCHITECTURES = ("x86_64", "arm64", "amd64", "aarch64")
ON_CONFLICT = ("fail", "wait", "cancel", "queue")
