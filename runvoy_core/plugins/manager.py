"""Loads plugins from entry points, one at a time, so that a broken plugin is reported, never fatal.

Environment:
  RUNVOY_PLUGINS_ALLOW   comma list of entry-point names; when set, only these load
  RUNVOY_PLUGINS_BLOCK   comma list of entry-point names that never load
  RUNVOY_DISABLE_PLUGIN_AUTOLOAD=1   load only the built-in local provider
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from runvoy_core.errors import PluginError
from runvoy_core.plugins import hookspecs
from runvoy_core.plugins.registry import ProviderRegistry

ENTRY_POINT_GROUP = "runvoy"
BUILTIN_PLUGIN = "local"


@dataclass
class PluginFailure:
    plugin: str
    distribution: str | None
    error: str


@dataclass
class LoadedPlugins:
    registry: ProviderRegistry
    hooks: pluggy.PluginManager
    failures: list[PluginFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _split_env(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


def _builtin_entry_point() -> metadata.EntryPoint:
    return metadata.EntryPoint(
        name=BUILTIN_PLUGIN, value="runvoy_core.providers.local.plugin", group=ENTRY_POINT_GROUP
    )


def _entry_points() -> list[metadata.EntryPoint]:
    found = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    if not any(ep.name == BUILTIN_PLUGIN for ep in found):
        # running from a source tree that is not installed: the local provider is always there
        found.insert(0, _builtin_entry_point())
    # one entry point per name (an editable install can list a distribution twice)
    unique: dict[tuple[str, str], metadata.EntryPoint] = {}
    for ep in found:
        unique.setdefault((ep.name, ep.value), ep)
    return list(unique.values())


def load_plugins(extra_plugins: list[tuple[str, ModuleType | Any]] | None = None) -> LoadedPlugins:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = ProviderRegistry()
    result = LoadedPlugins(registry=registry, hooks=pm)
    allow, block = _split_env("RUNVOY_PLUGINS_ALLOW"), _split_env("RUNVOY_PLUGINS_BLOCK")
    only_builtin = os.environ.get("RUNVOY_DISABLE_PLUGIN_AUTOLOAD", "") in ("1", "true", "yes")

    candidates: list[tuple[str, str | None, str | None, Any]] = []
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        if (
            (only_builtin and ep.name != BUILTIN_PLUGIN)
            or ep.name in block
            or (allow and ep.name not in allow)
        ):
            result.skipped.append(ep.name)
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must never take the CLI down
            result.failures.append(PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
            continue
        candidates.append((ep.name, dist, version, module))
    for name, module in extra_plugins or []:
        candidates.append((name, None, None, module))

    for name, dist, version, module in candidates:
        api = getattr(module, "RUNVOY_PLUGIN_API", hookspecs.PLUGIN_API_VERSION)
        if api != hookspecs.PLUGIN_API_VERSION:
            result.failures.append(
                PluginFailure(
                    name,
                    dist,
                    f"plugin API version {api} is not supported (runvoy speaks {hookspecs.PLUGIN_API_VERSION})",
                )
            )
            continue
        try:
            pm.register(module, name=name)
        except ValueError as exc:  # registered twice under one name, or bad hookimpl
            result.failures.append(PluginFailure(name, dist, str(exc)))
            continue
        hook = getattr(module, "runvoy_register_providers", None)
        if hook is None:
            continue
        registry.current_plugin, registry.current_distribution, registry.current_version = name, dist, version
        before = set(registry.names())
        try:
            hook(registry=registry)
        except PluginError as exc:
            result.failures.append(PluginFailure(name, dist, str(exc)))
        except Exception as exc:
            result.failures.append(PluginFailure(name, dist, f"{type(exc).__name__}: {exc}"))
            # keep nothing half-registered from a plugin that failed
            for added in set(registry.names()) - before:
                registry._specs.pop(added, None)
            pm.unregister(module)
    registry.current_plugin, registry.current_distribution, registry.current_version = "", None, None
    return result


_CACHE: LoadedPlugins | None = None


def get_plugins(refresh: bool = False) -> LoadedPlugins:
    global _CACHE
    if _CACHE is None or refresh:
        _CACHE = load_plugins()
    return _CACHE
