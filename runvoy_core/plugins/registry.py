"""ProviderSpec and the registry handed to ``runvoy_register_providers`` (the tox 4 style)."""

from __future__ import annotations

import importlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runvoy_core.errors import PluginError

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class ProviderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    factory: str = Field(description="'module:callable' taking (config, settings) and returning a Provider")
    config_model: str | None = Field(default=None, description="'module:Class', a pydantic model")
    capabilities: frozenset[str] = frozenset()
    install_extra: str | None = None
    description: str = ""
    plugin: str = ""  # filled by the registry: the entry point / distribution that registered it
    distribution: str | None = None
    version: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"provider name {value!r} must be lowercase letters, digits, - or _")
        return value

    @field_validator("factory", "config_model")
    @classmethod
    def _import_string(cls, value: str | None) -> str | None:
        if value is not None and not _IMPORT_STRING.match(value):
            raise ValueError(f"{value!r} must be an import string 'package.module:attribute'")
        return value

    def install_hint(self) -> str:
        extra = self.install_extra or self.name
        return f"install it with: pip install 'runvoy[{extra}]'"

    def load_factory(self) -> Any:
        return load_import_string(self.factory, self)

    def load_config_model(self) -> Any:
        return load_import_string(self.config_model, self) if self.config_model else None


def load_import_string(target: str, spec: ProviderSpec) -> Any:
    from runvoy_core.errors import ProviderUnavailable

    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProviderUnavailable(
            f"provider {spec.name!r} cannot load: {exc}",
            hint=spec.install_hint(),
        ) from None
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class ProviderRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ProviderSpec] = {}
        self.current_plugin = ""
        self.current_distribution: str | None = None
        self.current_version: str | None = None

    def register(self, spec: ProviderSpec | dict[str, Any]) -> None:
        if isinstance(spec, dict):
            spec = ProviderSpec.model_validate(spec)
        spec = spec.model_copy(
            update={
                "plugin": spec.plugin or self.current_plugin,
                "distribution": spec.distribution or self.current_distribution,
                "version": spec.version or self.current_version,
            }
        )
        existing = self._specs.get(spec.name)
        if existing is not None:
            raise PluginError(
                f"provider {spec.name!r} is registered twice: by plugin {existing.plugin!r} and by {spec.plugin!r}",
                hint="uninstall one of the two distributions, or block one with RUNVOY_PLUGINS_BLOCK",
            )
        self._specs[spec.name] = spec

    def get(self, name: str) -> ProviderSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[ProviderSpec]:
        return [self._specs[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._specs
