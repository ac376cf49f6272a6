"""The ``[images]`` config section, checked from the settings' raw ``images`` table (``Settings.images``)::

    [images]
    allow = ["123456789012.dkr.ecr.*.amazonaws.com/*", "python:3.*"]   # empty: every image is allowed
    block = ["*:latest"]                       # block wins over allow
    require_digest = false                      # true: only IMAGE@sha256:... references
    cache_ttl = 300                             # seconds a resolution is reused (0-3600; 0 turns the cache off)
    timeout = 10                                # seconds per registry request (0 < t <= 120)

    [images.registries."ghcr.io"]               # per registry host (HOST or HOST:PORT, as in the reference)
    username_env = "GHCR_USER"                  # names of environment variables, never the secrets themselves
    password_env = "GHCR_TOKEN"
    # token_env = "REGISTRY_TOKEN"              # or: a bearer token sent as is (exclusive with the pair above)
    ca_bundle = "/etc/ssl/private-ca.pem"       # PEM file of CAs to trust for this registry (TLS is always verified)
    plain_http = false                          # true: talk HTTP, not HTTPS (a registry on localhost, tests)

Bounds: at most 256 patterns per list, each 1-512 characters of the characters a reference may hold plus the
glob characters ``* ? [ ] !``; at most 64 registries.

Records on msgspec (``runvoy_core.records``), not pydantic: a run with an image reads this section before it
starts, and importing pydantic alone costs more than the image check's whole budget of 100 ms (decisions
1410, 0804). Input from outside goes through ``model_validate``; the constructors check the same rules (in
``__post_init__``) and accept a registry as a plain table, so both raise ``RecordError`` (a ``ValueError``)
naming the key.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runvoy_core.images.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN
from runvoy_core.records import Record, RecordError

_PATTERN = re.compile(r"[A-Za-z0-9._/:@*?\[\]!-]{1,512}")
"""A glob (fnmatch, case-sensitive) over an image reference; see ``policy``."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
PATTERNS_MAX = 256
REGISTRIES_MAX = 64

_HOST = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"(?::[0-9]{1,5})?"
)


class RegistryConfig(Record, kw_only=True):
    """How to reach and authenticate to one registry host."""

    username_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    ca_bundle: Path | None = None
    plain_http: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("username_env", "password_env", "token_env"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, str)
                and _ENV_NAME.fullmatch(
                    value,
                )
            ):
                raise RecordError(
                    f"{value!r} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most 255)",
                    name,
                )
        if isinstance(self.ca_bundle, str):
            self.ca_bundle = Path(self.ca_bundle)
        if not isinstance(self.plain_http, bool):
            raise RecordError("must be true or false", "plain_http")
        if (self.username_env is None) != (self.password_env is None):
            raise RecordError("username_env and password_env go together: set both or neither")
        if self.token_env is not None and self.username_env is not None:
            raise RecordError("token_env excludes username_env/password_env: set one way to authenticate")


def normalise_host(host: str) -> str:
    """``index.docker.io`` is ``docker.io``, as in references."""
    return DEFAULT_DOMAIN if host == LEGACY_DEFAULT_DOMAIN else host


def registry_host(host: object) -> str:
    """A registry host as an image reference names it (HOST or HOST:PORT), normalised as references are
    (``index.docker.io`` is ``docker.io``): what every config keyed by registry takes (``[images.registries]``
    and the providers' registry settings). ValueError, with the accepted form, for anything else."""
    if not isinstance(host, str) or len(host) > 255 or not _HOST.fullmatch(host):
        raise ValueError(
            f"{str(host)[:80]!r} is not a registry host (HOST or HOST:PORT, as in an image reference)"
        )
    return normalise_host(host)


def _patterns(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise RecordError("must be a list of patterns", name)
    if len(value) > PATTERNS_MAX:
        raise RecordError(f"at most {PATTERNS_MAX} patterns", name)
    for index, pattern in enumerate(value):
        if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
            raise RecordError(
                f"{pattern!r} is not a pattern (1 to 512 of the characters of an image reference and * ? [ ] !)",
                f"{name}.{index}",
            )
    return value


_SWITCH_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _switch(value: Any, name: str) -> bool:
    """A boolean; a RUNVOY_IMAGES__* variable gives it as text: true/false, 1/0, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _SWITCH_WORDS:
        return _SWITCH_WORDS[value.strip().lower()]
    raise RecordError(f"must be true or false, not {value!r}"[:200], name)


def _seconds(value: Any, name: str, *, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordError(f"must be a number of seconds, not {value!r}", name)
    if value < low or (low_open and value == low) or value > high:
        bound = f"more than {low:g}" if low_open else f"at least {low:g}"
        raise RecordError(f"must be {bound} and at most {high:g}, not {value!r}", name)
    return float(value)


if TYPE_CHECKING:
    _Registries = dict[str, RegistryConfig]
else:  # read as plain tables, so that a refusal names the host (msgspec's path would say registries[...])
    _Registries = dict[str, Any]


class ImagesConfig(Record, kw_only=True):
    """The ``[images]`` section: policy, cache and registries."""

    allow: list[str] = []
    block: list[str] = []
    require_digest: bool = False
    check: bool = True
    """Ask the registry before a run starts (exists, right platform, digest); false: the policy only, as
    ``--no-image-check`` for every run."""
    cache_ttl: float = 300.0
    timeout: float = 10.0
    registries: _Registries = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        _patterns(self.allow, "allow")
        _patterns(self.block, "block")
        self.require_digest = _switch(self.require_digest, "require_digest")
        self.check = _switch(self.check, "check")
        self.cache_ttl = _seconds(self.cache_ttl, "cache_ttl", low=0, high=3600)
        self.timeout = _seconds(self.timeout, "timeout", low=0, high=120, low_open=True)
        self.registries = _registries(self.registries)

    def registry(self, host: str) -> RegistryConfig:
        return self.registries.get(normalise_host(host)) or RegistryConfig()


def _registries(value: Any) -> dict[str, RegistryConfig]:
    if not isinstance(value, dict):
        raise RecordError("must be a table of registry hosts", "registries")
    if len(value) > REGISTRIES_MAX:
        raise RecordError(f"at most {REGISTRIES_MAX} registries", "registries")
    normalised: dict[str, RegistryConfig] = {}
    for host, registry in value.items():
        if not isinstance(host, str) or not _HOST.fullmatch(host):
            raise RecordError(
                f"{host!r} is not a registry host (HOST or HOST:PORT, as in an image reference)", "registries"
            )
        if not isinstance(registry, RegistryConfig):
            if isinstance(registry, dict):  # a constructor's table may hold a Path already
                registry = {k: str(v) if isinstance(v, Path) else v for k, v in registry.items()}
            try:
                registry = RegistryConfig.model_validate(registry)
            except RecordError as exc:
                raise RecordError(
                    exc.problem, f"registries.{host}" + (f".{exc.path}" if exc.path else "")
                ) from None
        key = normalise_host(host)
        if key in normalised:
            raise RecordError(f"{host!r} names the same registry as another entry", "registries")
        normalised[key] = registry
    return normalised
