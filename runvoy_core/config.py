"""Settings (a pydantic model): defaults < config file (top level, then the selected profile) < RUNVOY_* environment < explicit
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

The layering is done here rather than with pydantic-settings: importing pydantic-settings costs about three
times as much as pydantic itself (decision 0007), more than the whole start-up budget of ``runvoy run``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runvoy_core import inputs
from runvoy_core.errors import ConfigError
from runvoy_core.models import LockLease, PollIntervalMax, StartTimeout, WebhookTimeout


def default_config_path() -> Path:
    explicit = os.environ.get("RUNVOY_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("runvoy")) / "config.toml"


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("runvoy"))


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    webhook_url: str | None = None
    webhook_timeout: WebhookTimeout = 5.0

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[!-~]{1,2040}", value, re.ASCII):
            raise ValueError("must be an http:// or https:// URL (printable ASCII, at most 2048 characters)")
        return value


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
        if path[0] not in Settings.model_fields or not all(path):
            continue
        problem = inputs.text_problem(raw)
        if problem:
            raise ConfigError(f"environment variable {name} {problem}", hint=f"fix or unset {name}")
        value: Any = raw
        if raw[:1] in ("[", "{"):
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


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    provider: str = "local"
    profile: str = "default"
    home: Path = Field(default_factory=default_home)
    region: str | None = None
    user: str | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    lock_lease: LockLease = 30.0
    poll_interval_max: PollIntervalMax = 5.0
    start_timeout: StartTimeout = 900.0
    """A run still not RUNNING after this long is stopped and marked FAILED (clouds can sit in PENDING)."""
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        return str(inputs.PROVIDER.parse(value))

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        return str(inputs.PROFILE.parse(value))

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else str(inputs.REGION.parse(value))

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,127}", value, re.ASCII):
            raise ValueError(f"{value!r} is not a user name (letters, digits, _ . @ -, at most 128)")
        return value

    @field_validator("home")
    @classmethod
    def _home(cls, value: Path) -> Path:
        text = str(value)
        problem = inputs.text_problem(text)
        if problem or not text or len(text) > 4096:
            raise ValueError(f"{text!r} is not a directory path ({problem or '1 to 4096 characters'})")
        path = value.expanduser()
        for where in (path, *path.parents):
            if where.exists():
                if not where.is_dir():
                    raise ValueError(
                        f"{str(where)!r} is not a directory (runvoy keeps its state in {text!r})"
                    )
                break
        return value

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in value:
            inputs.PROVIDER.parse(name)
        return value

    def provider_section(self, name: str) -> dict[str, Any]:
        return dict(self.providers.get(name, {}))

    @property
    def resolved_user(self) -> str:
        if self.user:
            return self.user
        import getpass

        try:
            return getpass.getuser()
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
    except ValidationError as exc:
        raise ConfigError(
            f"invalid configuration: {describe_validation_error(exc)}",
            hint=f"fix it in {path} or in the RUNVOY_* environment; see: runvoy config show",
        ) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line: 'field.path: message; other.field: message'."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown setting"
        # a rule across fields (a model validator) has no field path: its message names the fields
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
