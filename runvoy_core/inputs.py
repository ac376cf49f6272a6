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

# -- the team service (runvoy_core.team, decisions 1506-1507) ----------------------------------------------
USER_NAME = _pattern_form(
    "user name",
    "a user or service account name: lowercase letters, digits and . _ @ - (1 to 64 characters, starting "
    "with a letter), such as alice or ci-deploy",
    r"[a-z][a-z0-9._@-]{0,63}",
)
TEAM = _pattern_form(
    "team",
    "a team name: lowercase letters, digits and - (1 to 32 characters, starting with a letter), such as data",
    r"[a-z][a-z0-9-]{0,31}",
)
ROLE = _pattern_form("role", "one of viewer, operator, admin", r"viewer|operator|admin")
ACCOUNT_KIND = _pattern_form("account kind", "user or service", r"user|service")
KEY_NAME = _pattern_form(
    "key name",
    "a key name: letters, digits and _ . : - (1 to 64 characters, starting with a letter or digit), such as laptop",
    r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}",
)
KEY_ID = _pattern_form(
    "key id", "a key id: 16 lowercase hexadecimal digits, such as 3f2a9c0d1e4b5a67", r"[0-9a-f]{16}"
)
KEY_EXPIRY = _duration_form("key lifetime", 3600.0, 730 * DAY)
KEY_OVERLAP = _duration_form("key overlap", 60.0, 7 * DAY)
POLICY_NAME = _pattern_form(
    "policy name",
    "a policy name: lowercase letters, digits and - (1 to 64 characters, starting with a letter), such as data-etl",
    r"[a-z][a-z0-9-]{0,63}",
)
MAX_POLICY_PATTERNS = 32
"""At most this many patterns in one field of a policy."""
POLICY_PATTERN = _pattern_form(
    "policy pattern",
    "a shell-style pattern (* ? [seq]) of 1 to 128 printable ASCII characters without spaces, such as etl-*",
    r"[\x21-\x7e]{1,128}",
)

# -- the client of a runvoy server (runvoy_core.remote, decision 1517) ---------------------------------------
MAX_SERVER_URL_CHARS = 2048


def _server_url(value: Any) -> str:
    from urllib.parse import urlsplit

    given = _text(value, "server URL").strip()
    if len(given) > MAX_SERVER_URL_CHARS:
        raise ValueError(f"a server URL is at most {MAX_SERVER_URL_CHARS} characters")
    if not given.isascii() or any(c.isspace() for c in given):
        raise ValueError(f"{given!r} has spaces or non-ASCII characters")
    parts = urlsplit(given)
    try:
        parts.port  # noqa: B018 - raises on a port that is not 0-65535
    except ValueError:
        raise ValueError(f"{given!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{given!r} is not an http:// or https:// URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(
            "a server URL carries no user, password, query or fragment (give the key by runvoy login)"
        )
    return given.rstrip("/")


SERVER_URL = Form(
    "server URL",
    "an http:// or https:// URL of a runvoy server (host, optional port and path; no user, password, query or "
    f"fragment; at most {MAX_SERVER_URL_CHARS} characters), such as https://runvoy.example.com",
    _server_url,
)


def _api_key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("an API key is text")
    given = value.strip()
    # the error never repeats the value: a mistyped key is still mostly a secret
    if not re.fullmatch(r"rvk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", given, re.ASCII):
        raise ValueError("this is not a runvoy API key")
    return given


API_KEY = Form(
    "API key",
    "a runvoy API key: rvk_, 16 lowercase hexadecimal digits, _, and 43 characters of A-Z a-z 0-9 _ -",
    _api_key,
)

# -- the audit log (`runvoy audit`, decision 1509) ----------------------------------------------------------
_AUDIT_DURATION = "a duration back from now, 1s to 3650d, such as 90m, 24h or 7d"
_AUDIT_DATE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


def _audit_time(value: Any) -> Any:
    """A ``datetime`` (UTC) for a date or time, a float of seconds back from now for a duration."""
    from datetime import UTC, datetime

    text = _text(value, "time").strip()
    if len(text) <= 35 and re.fullmatch(_AUDIT_DATE, text, re.ASCII):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date: no such day or time") from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if not 2000 <= moment.year <= 2999:
            raise ValueError(f"{text!r} is not between the years 2000 and 2999")
        return moment
    try:
        return units.parse_duration(text, low=1.0, high=3650 * DAY, form=_AUDIT_DURATION)
    except ValueError:
        raise ValueError(f"{text!r} is neither {_AUDIT_DURATION} nor a date such as 2026-12-01") from None


AUDIT_TIME = Form(
    "audit time",
    f"{_AUDIT_DURATION}, or a date or time in UTC (unless it names its offset) such as 2026-12-01, "
    "2026-12-01T08:30:00Z or 2026-12-01T09:30+01:00, years 2000 to 2999",
    _audit_time,
)


def audit_time(value: str, now: Any) -> Any:
    """The moment ``value`` (an AUDIT_TIME) names: a date as given, a duration back from ``now``."""
    from datetime import timedelta

    parsed = AUDIT_TIME.parse(value)
    return now - timedelta(seconds=parsed) if isinstance(parsed, float) else parsed


def _audit_anchor(value: Any) -> tuple[int, str]:
    text = _text(value, "anchor").strip()
    found = re.fullmatch(r"([0-9]{1,12}):([0-9a-f]{64})", text, re.ASCII)
    if found is None or int(found.group(1)) < 1:
        raise ValueError(
            f"{text!r} is not SEQ:HASH (an entry number from 1, a colon, 64 lowercase hex digits)"
        )
    return int(found.group(1)), found.group(2)


AUDIT_ANCHOR = Form(
    "audit anchor",
    "SEQ:HASH, an entry's number (1 to 999999999999) and its sha256 hash in 64 lowercase hexadecimal digits, "
    "as runvoy audit verify prints them",
    _audit_anchor,
)


def _totp_code(value: Any) -> str:
    # the message never repeats the value: it may be a code
    text = value.replace(" ", "") if isinstance(value, str) and len(value) <= 32 else ""
    if not re.fullmatch(r"[0-9]{6}", text, re.ASCII):
        raise ValueError("this is not a one-time password (6 digits)")
    return text


TOTP_CODE = Form(
    "one-time password",
    "the 6 digits an authenticator app shows (spaces ignored, at most 32 characters in all), such as 123456 "
    "or 123 456",
    _totp_code,
)

ARCHITECTURES = ("x86_64", "arm64", "amd64", "aarch64")
ON_CONFLICT = ("fail", "wait", "cancel", "queue")

# -- the server (`runvoy server`, its [serve] section, `runvoy health`) -------------------------------------
REQUEST_TIMEOUT = _duration_form("request timeout", 1.0, 3600.0)
HEALTH_TIMEOUT = _duration_form("health timeout", 0.1, 300.0)


def _host(value: Any) -> str:
    text = _text(value, "host")
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|[0-9A-Fa-f:.]{2,45}", text, re.ASCII):
        raise ValueError(f"{text!r} is not a host name or IP address")
    if ":" in text:
        import ipaddress

        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv6 address") from None
    return text


HOST = Form(
    "host",
    "a host name or IP address to listen on, such as 127.0.0.1, 0.0.0.0, :: or localhost "
    "(letters, digits, . and -, at most 253; or an IPv6 address)",
    _host,
)


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a port number")
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]{1,5}", text, re.ASCII) or int(text) > 65535:
        raise ValueError(f"{value!r} is not a port from 0 to 65535")
    return int(text)


PORT = Form("port", "a TCP port from 0 to 65535 (0: any free port)", _port)

MIN_BODY_LIMIT = 1024
MAX_BODY_LIMIT = 64 * 1024 * 1024
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}


def _byte_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a size such as 512KiB or 1MiB")
    found = re.fullmatch(r"([0-9]{1,12})\s*([A-Za-z]{0,3})", str(value).strip(), re.ASCII)
    unit = found.group(2).lower() if found else ""
    if found is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{value!r} is not a size such as 512KiB or 1MiB (a bare number is bytes)")
    size = int(found.group(1)) * _SIZE_UNITS[unit]
    if not MIN_BODY_LIMIT <= size <= MAX_BODY_LIMIT:
        raise ValueError(f"{value!r} is not from 1KiB to 64MiB")
    return size


BODY_LIMIT = Form(
    "body limit", "a size from 1KiB to 64MiB such as 512KiB or 1MiB (a bare number is bytes)", _byte_size
)


def _positive_number(name: str, low: float, high: float, *, integer: bool = False) -> Form:
    kind = "a whole number" if integer else "a number"
    text = f"{kind} from {low:,.10g} to {high:,.10g}"

    def parse(value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not {text}")
        given = str(value).strip()
        pattern = r"[0-9]{1,9}" if integer else r"[0-9]{1,9}(\.[0-9]{1,6})?"
        if isinstance(value, float) and not integer:
            given = repr(value) if value == value and value not in (float("inf"), float("-inf")) else "x"
            pattern = r"[0-9]{1,9}(\.[0-9]{1,17})?(e-?[0-9]{1,3})?"
        if not re.fullmatch(pattern, given, re.ASCII):
            raise ValueError(f"{value!r} is not {text}")
        number = float(given)
        if not low <= number <= high:
            raise ValueError(f"{value!r} is not {text}")
        return int(number) if integer else number

    return Form(name, text, parse)


REQUEST_RATE = _positive_number("request rate", 0.01, 100_000.0)
"""Requests per second each API key may send to one server replica (the token bucket's refill)."""
REQUEST_BURST = _positive_number("request burst", 1, 1_000_000, integer=True)
"""Requests each API key may send at once to one server replica (the token bucket's size)."""


def _network(value: Any) -> str:
    text = _text(value, "trusted proxy")
    import ipaddress

    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or network such as 10.0.0.1 or 10.0.0.0/8") from None
    return text


TRUSTED_PROXY = Form(
    "trusted proxy", "an IP address or network such as 10.0.0.1, 10.0.0.0/8 or fd00::/8", _network
)
MAX_TRUSTED_PROXIES = 64
