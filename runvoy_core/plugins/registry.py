"""ProviderSpec and the registry handed to ``runvoy_register_providers`` (the tox 4 style)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

from runvoy_core.errors import PluginError
from runvoy_core.ports.capabilities import Capability

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class ProviderSpec:
    """What a plugin registers for one provider. A plain dataclass, not a pydantic model: plugins load on
    every command (``runvoy cost estimate`` included), and this keeps loading them free of pydantic."""

    name: str
    factory: str
    """'module:callable' taking (config, settings) and returning a Provider; imported on first use."""
    config_model: str | None = None
    """'module:Class', a pydantic model of the provider's config section."""
    capabilities: frozenset[Capability] = frozenset()
    """Everything the provider can do, once (see ``Capability``); an unknown name is a load error."""
    pricing: str | None = None
    """'module:attribute', a ``runvoy_core.cost.source.PriceSource``: sizes, billing rules and prices (standard
    library only, imported by ``runvoy cost`` without the provider's SDK). None: runs cost nothing known."""
    credentials: str | None = None
    """'module:attribute', a ``runvoy_core.ports.optional.CredentialCheck``: how ``runvoy init`` finds this
    cloud's credentials (and which config key holds the region). None: the provider needs none (local)."""
    install_extra: str | None = None
    description: str = ""
    plugin: str = ""  # filled by the registry: the entry point / distribution that registered it
    distribution: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"provider name {self.name!r} must be lowercase letters, digits, - or _")
        for field_name in ("factory", "config_model", "pricing", "credentials"):
            value = getattr(self, field_name)
            if field_name == "factory" and value is None:
                raise ValueError("factory is required: an import string 'package.module:attribute'")
            if value is not None and (not isinstance(value, str) or not _IMPORT_STRING.match(value)):
                raise ValueError(
                    f"{field_name} {value!r} must be an import string 'package.module:attribute'"
                )
        try:
            capabilities = frozenset(Capability(c) for c in self.capabilities)
        except (ValueError, TypeError):
            known = ", ".join(c.value for c in Capability)
            raise ValueError(
                f"capabilities {sorted(map(str, self.capabilities))} must be among: {known}"
            ) from None
        object.__setattr__(self, "capabilities", capabilities)
        for field_name in ("install_extra", "distribution", "version"):
            value = getattr(self, field_name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{field_name} must be a string")
        if not isinstance(self.description, str) or not isinstance(self.plugin, str):
            raise ValueError("description and plugin must be strings")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ProviderSpec:
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown ProviderSpec field(s): {', '.join(unknown)}")
        return cls(**data)

    def install_hint(self) -> str:
        extra = self.install_extra or self.name
        return f"install it with: pip install 'runvoy[{extra}]'"

    def load_factory(self) -> Any:
        return load_import_string(self.factory, self)

    def load_config_model(self) -> Any:
        return load_import_string(self.config_model, self) if self.config_model else None

    def load_credential_check(self) -> Any:
        """The provider's ``CredentialCheck`` (None when it declares none); the caller checks its type."""
        return load_import_string(self.credentials, self) if self.credentials else None


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
            spec = ProviderSpec.from_mapping(spec)
        spec = replace(
            spec,
            plugin=spec.plugin or self.current_plugin,
            distribution=spec.distribution or self.current_distribution,
            version=spec.version or self.current_version,
        )
        existing = self._specs.get(spec.name)
        if existing is not None:
            raise PluginError(
                f"provider {spec.name!r} is registered twice: by plugin {existing.plugin!r} and by {spec.plugin!r}",
                hint="uninstall one of the two distributions, or block one with RUNVOY_PLUGINS_BLOCK",
            )
        self._specs[spec.name] = spec

    @contextmanager
    def plugin_scope(
        self, plugin: str, distribution: str | None = None, version: str | None = None
    ) -> Iterator[PluginScope]:
        """Registrations made inside are attributed to ``plugin``; ``scope.discard()`` takes them back."""
        scope = PluginScope(self, set(self._specs))
        self.current_plugin, self.current_distribution, self.current_version = plugin, distribution, version
        try:
            yield scope
        finally:
            self.current_plugin, self.current_distribution, self.current_version = "", None, None

    def get(self, name: str) -> ProviderSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[ProviderSpec]:
        return [self._specs[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._specs


class PluginScope:
    """The providers one plugin registered, so that a plugin failing halfway leaves nothing behind."""

    def __init__(self, registry: ProviderRegistry, before: set[str]) -> None:
        self._registry, self._before = registry, before

    def discard(self) -> None:
        for name in set(self._registry._specs) - self._before:
            del self._registry._specs[name]
