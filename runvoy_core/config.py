"""Settings (a record, runvoy_core.records): defaults < config file (top level, then the selected profile) < RUNVOY_* environment < explicit
arguments.

The config file is TOML, at ``$RUNVOY_CONFIG`` or ``<user config dir>/runvoy/config.toml``::

    provider = "local"
    [providers.aws]            # validated by the aws provider's own config model
    region = "eu-west-1"
    [profiles.ci]              # RUNVOY_PROFILE=ci or --profile ci
    provider = "aws"
    [profiles.ci.providers.aws]
    cluster = "ci"

Environment: ``RUNVOY_PROVIDER``, ``RUNVOY_HOME``, ``RUNVOY_PROVIDERS__AWS__REGION`` (``__`` nests).

The layering is done here rather than with pydantic-settings, and the settings are a msgspec record rather than a
pydantic model: importing either costs more than the whole start-up budget of a command (decisions 0007, 1410).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from runvoy_core import inputs
from runvoy_core.errors import ConfigError
from runvoy_core.models import Cpu, LockLease, MemoryMiB, PollIntervalMax, StartTimeout, WebhookTimeout
from runvoy_core.paths import default_config_path, default_home
from runvoy_core.records import Record, RecordError, parsed_type

__all__ = ["Settings", "default_config_path", "default_home", "load_settings"]


if TYPE_CHECKING:
    from typing import TypeAlias

    Host: TypeAlias = str
    Port: TypeAlias = int
    BodyLimit: TypeAlias = int
    RequestRate: TypeAlias = float
    RequestBurst: TypeAlias = int
    RequestTimeout: TypeAlias = float
else:
    Host = parsed_type(str, inputs.HOST.parse, "Host")
    Port = parsed_type(int, inputs.PORT.parse, "Port")
    BodyLimit = parsed_type(int, inputs.BODY_LIMIT.parse, "BodyLimit")
    RequestRate = parsed_type(float, inputs.REQUEST_RATE.parse, "RequestRate")
    RequestBurst = parsed_type(int, inputs.REQUEST_BURST.parse, "RequestBurst")
    RequestTimeout = parsed_type(float, inputs.REQUEST_TIMEOUT.parse, "RequestTimeout")

DEFAULT_PORT = 8421


class ServeConfig(Record, kw_only=True):
    """The ``[serve]`` section: how ``runvoy server`` listens and limits (docs/server.md, decision 1514).
    Not ``[server]``: the key ``server`` is the URL of a server the CLI goes through (decision 1501)."""

    host: Host = "127.0.0.1"
    port: Port = DEFAULT_PORT
    body_limit: BodyLimit = 1 << 20
    """Bytes; given as "1MiB", "512KiB" or a number of bytes."""
    rate: RequestRate = 20.0
    """Requests per second per API key, on each replica (a token bucket's refill)."""
    burst: RequestBurst = 40
    """Requests per API key at once, on each replica (the token bucket's size)."""
    request_timeout: RequestTimeout = 90.0
    """Until a response starts: a stream (SSE) that has started is not cut."""
    trusted_proxies: list[str] = []
    """Addresses or networks whose X-Forwarded-For / X-Forwarded-Proto are believed; none by default."""
    require_totp_for_admin: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.trusted_proxies) > inputs.MAX_TRUSTED_PROXIES:
            raise RecordError(f"at most {inputs.MAX_TRUSTED_PROXIES} entries", "trusted_proxies")
        for entry in self.trusted_proxies:
            try:
                inputs.TRUSTED_PROXY.parse(entry)
            except ValueError as exc:
                raise RecordError(str(exc), "trusted_proxies") from None


class NotifyConfig(Record, kw_only=True):
    webhook_url: str | None = None
    webhook_timeout: WebhookTimeout = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        value = self.webhook_url
        if value is not None and not re.fullmatch(r"https?://[!-~]{1,2040}", value, re.ASCII):
            raise RecordError(
                "must be an http:// or https:// URL (printable ASCII, at most 2048 characters)", "webhook_url"
            )


def check_nesting(data: Any, where: str) -> None:
    if inputs.nesting_depth(data) > inputs.MAX_NESTING:
        raise ConfigError(
            f"{where} nests tables or lists more than {inputs.MAX_NESTING} levels deep "
            f"(or holds more than {inputs.MAX_NODES} values)",
            hint=f"runvoy's settings nest at most 4 levels; fix {where}",
        )


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config_file(path: Path, profile: str | None) -> dict[str, Any]:
    """The file's settings with the profile applied. Raises ConfigError naming the file and the problem."""
    if not path.exists():
        if profile and profile != "default":
            raise ConfigError(f"profile {profile!r} requested but there is no config file at {path}")
        return {}
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}", hint=f"fix or remove {path}"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"config file {path} nests tables or lists more than {inputs.MAX_NESTING} levels deep",
            hint=f"fix or remove {path}",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    check_nesting(data, f"config file {path}")
    profiles = data.pop("profiles", {}) or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table of [profiles.NAME] sections")
    if profile and profile != "default":
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"{path}: no profile {profile!r} (profiles: {known})",
                hint=f"add a [profiles.{profile}] section or pick another profile",
            )
        section = profiles[profile]
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [profiles.{profile}] must be a table of settings")
        data = _deep_merge(data, section)
    return data


def read_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``RUNVOY_<FIELD>`` and ``RUNVOY_<FIELD>__<KEY>...`` for the fields of Settings; other RUNVOY_*
    variables (RUNVOY_CONFIG, RUNVOY_EXECUTION_ID inside a task...) are not settings and are ignored."""
    data: dict[str, Any] = {}
    for name, raw in (os.environ if environ is None else environ).items():
        if not name.startswith("RUNVOY_"):
            continue
        path = [part.lower() for part in name[len("RUNVOY_") :].split("__")]
        if path[0] not in Settings.__struct_fields__ or not all(path):
            continue
        problem = inputs.text_problem(raw)
        if problem:
            raise ConfigError(f"environment variable {name} {problem}", hint=f"fix or unset {name}")
        value: Any = raw
        if raw[:1] in ("[", "{"):
            import json

            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            except RecursionError:
                raise ConfigError(
                    f"environment variable {name} nests more than {inputs.MAX_NESTING} levels deep",
                    hint=f"fix or unset {name}",
                ) from None
            check_nesting(value, f"environment variable {name}")
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = value
    return data


class Settings(Record, kw_only=True):
    provider: str = "local"
    profile: str = "default"
    home: Path = msgspec.field(default_factory=default_home)
    region: str | None = None
    user: str | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    lock_lease: LockLease = 30.0
    poll_interval_max: PollIntervalMax = 5.0
    start_timeout: StartTimeout = 900.0
    """A run still not RUNNING after this long is stopped and marked FAILED (clouds can sit in PENDING)."""
    cpu: Cpu | None = None
    """The size of a run that names none (``runvoy init`` writes the provider's smallest); None: 0.25 vCPU."""
    memory: MemoryMiB | None = None
    """MiB, given as "512MiB" or "2GiB"; None: 512 MiB."""
    providers: dict[str, dict[str, Any]] = {}
    notify: NotifyConfig = msgspec.field(default_factory=NotifyConfig)
    serve: ServeConfig = msgspec.field(default_factory=ServeConfig)
    """The ``[serve]`` section: ``runvoy server``'s address and limits."""
    server: str | None = None
    """A runvoy server's URL (inputs.SERVER_URL): when set, ``Runvoy`` and the CLI work through that server
    instead of a provider of their own (decision 1511). RUNVOY_SERVER, or ``server = "https://..."``."""
    images: dict[str, Any] = {}
    """The ``[images]`` section (policy, cache, registries), per profile like the rest. Kept raw here and checked
    by ``runvoy_core.images.config.ImagesConfig`` (pydantic) only when a run has an image or ``config validate``
    runs, so commands without an image do not import pydantic (decisions 1410, 0804)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for field, form in (("provider", inputs.PROVIDER), ("profile", inputs.PROFILE)):
            try:
                setattr(self, field, str(form.parse(getattr(self, field))))
            except ValueError as exc:
                raise RecordError(str(exc), field) from None
        if self.region is not None:
            try:
                self.region = str(inputs.REGION.parse(self.region))
            except ValueError as exc:
                raise RecordError(str(exc), "region") from None
        if self.user is not None and not re.fullmatch(
            r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}", self.user, re.ASCII
        ):
            raise RecordError(
                f"{self.user!r} is not a user name (letters, digits, _ . @ -, at most 128)", "user"
            )
        if self.server == "":
            self.server = None  # RUNVOY_SERVER= turns off a server the config file sets
        if self.server is not None:
            try:
                self.server = str(inputs.SERVER_URL.parse(self.server))
            except ValueError as exc:
                raise RecordError(str(exc), "server") from None
        _check_home(self.home)
        for name in self.providers:
            try:
                inputs.PROVIDER.parse(name)
            except ValueError as exc:
                raise RecordError(str(exc), "providers") from None

    def provider_section(self, name: str) -> dict[str, Any]:
        return dict(self.providers.get(name, {}))

    @property
    def resolved_user(self) -> str:
        if self.user:
            return self.user
        # getpass.getuser()'s own order, without importing getpass (and termios) on every command
        for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
            if found := os.environ.get(name):
                return found
        try:
            import pwd

            return pwd.getpwuid(os.getuid()).pw_name
        except Exception:
            return "unknown"


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; any problem becomes a ConfigError naming the field and the accepted form."""
    path = config_path or default_config_path()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    profile = overrides.get("profile") or os.environ.get("RUNVOY_PROFILE")
    file_data = read_config_file(path, profile)
    data = _deep_merge(_deep_merge(file_data, read_environment()), overrides)
    try:
        return Settings.model_validate(data)
    except RecordError as exc:
        raise ConfigError(
            f"invalid configuration: {describe_validation_error(exc)}",
            hint=f"fix it in {path} or in the RUNVOY_* environment; see: runvoy config show",
        ) from None


def _check_home(value: Path) -> None:
    text = str(value)
    problem = inputs.text_problem(text)
    if problem or not text or len(text) > 4096:
        raise RecordError(f"{text!r} is not a directory path ({problem or '1 to 4096 characters'})", "home")
    path = value.expanduser()
    for where in (path, *path.parents):
        if where.exists():
            if not where.is_dir():
                raise RecordError(
                    f"{str(where)!r} is not a directory (runvoy keeps its state in {text!r})", "home"
                )
            break


def describe_validation_error(exc: ValueError) -> str:
    """One line: 'field.path: message; other.field: message', for runvoy's records (RecordError) and for a
    provider's pydantic config model (its ValidationError, imported only when it is one)."""
    if isinstance(exc, RecordError) or not type(exc).__module__.startswith("pydantic"):
        return str(exc)
    parts = []
    for err in exc.errors():  # type: ignore[attr-defined]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown setting"
        # a rule across fields (a model validator) has no field path: its message names the fields
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
