"""Settings: defaults < config file (top level, then the selected profile) < RUNVOY_* environment < explicit
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
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from runvoy_core.errors import ConfigError
from runvoy_core.models import Seconds


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
    model_config = ConfigDict(extra="forbid")

    webhook_url: str | None = None
    webhook_timeout: float = 5.0


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
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
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
        data = _deep_merge(data, profiles[profile])
    return data


class _FileSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RUNVOY_", env_nested_delimiter="__", extra="forbid", validate_default=False
    )

    provider: str = "local"
    profile: str = "default"
    home: Path = Field(default_factory=default_home)
    region: str | None = None
    user: str | None = None
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    lock_lease: Seconds = 30.0
    poll_interval_max: Seconds = 5.0
    start_timeout: Seconds = 900.0
    """A run still not RUNNING after this long is stopped and marked FAILED (clouds can sit in PENDING)."""
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)

    _file_data: dict[str, Any] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls, cls._file_data)

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
    try:
        # the file source reads a class attribute, as pydantic-settings builds sources per class
        Settings._file_data = file_data
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(
            f"invalid configuration: {describe_validation_error(exc)}",
            hint=f"fix it in {path} or in the RUNVOY_* environment; see: runvoy config show",
        ) from None
    finally:
        Settings._file_data = {}


def describe_validation_error(exc: ValidationError) -> str:
    """One line: 'field.path: message; other.field: message'."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
        msg = err.get("msg", "invalid")
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown setting"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
