"""Loads plugins from entry points, one at a time, so that a broken plugin is reported, never fatal.

Environment:
  RUNVOY_PLUGINS_ALLOW   comma list of entry-point names; when set, only these load
  RUNVOY_PLUGINS_BLOCK   comma list of entry-point names that never load
  RUNVOY_DISABLE_PLUGIN_AUTOLOAD=1   load only the built-in local provider
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from runvoy_core.errors import PluginError
from runvoy_core.plugins import hookspecs
from runvoy_core.plugins.discovery import FoundEntryPoint, find_entry_points
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
    notices: list[str] = field(default_factory=list)
    """Plugins that load but should change something (an older plugin API)."""


def _split_env(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


def _builtin_entry_point() -> FoundEntryPoint:
    return FoundEntryPoint(BUILTIN_PLUGIN, "runvoy_core.providers.local.plugin", None, None)


def _cache_dir() -> Path | None:
    """Where discovery is remembered: ``<RUNVOY_HOME>/cache`` (none when RUNVOY_HOME is unusable)."""
    from runvoy_core.paths import default_home

    home = os.environ.get("RUNVOY_HOME")
    try:
        return (Path(home).expanduser() if home else default_home()) / "cache"
    except (OSError, RuntimeError):
        return None


def _entry_points() -> list[FoundEntryPoint]:
    found = find_entry_points(ENTRY_POINT_GROUP, _cache_dir())
    if not any(ep.name == BUILTIN_PLUGIN for ep in found):
        # running from a source tree that is not installed: the local provider is always there
        found.insert(0, _builtin_entry_point())
    # one entry point per name (an editable install can list a distribution twice)
    unique: dict[tuple[str, str], FoundEntryPoint] = {}
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
        dist, version = ep.dist, ep.version
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
        error = _register_plugin(pm, registry, name, dist, version, module, result.notices)
        if error is not None:
            result.failures.append(PluginFailure(name, dist, error))
    return result


def _register_plugin(
    pm: pluggy.PluginManager,
    registry: ProviderRegistry,
    name: str,
    dist: str | None,
    version: str | None,
    module: Any,
    notices: list[str],
) -> str | None:
    """Register one plugin and call its provider hook through pluggy; the reason it was refused, or None.

    Everything that can go wrong with one plugin (a wrong API version, a hook with a wrong signature, a
    misspelled hook name, a hook that raises or registers an invalid spec) is reported against that plugin
    and leaves nothing of it behind: the other plugins, and the built-in local provider, load regardless.
    """
    api = getattr(module, "RUNVOY_PLUGIN_API", hookspecs.PLUGIN_API_VERSION)
    if api not in hookspecs.SUPPORTED_PLUGIN_APIS:
        supported = ", ".join(map(str, hookspecs.SUPPORTED_PLUGIN_APIS))
        return f"plugin API version {api} is not supported (runvoy speaks {supported})"
    if api != hookspecs.PLUGIN_API_VERSION:
        notices.append(
            f"plugin {name!r} speaks plugin API {api}: it loads, but capabilities set on its provider object are "
            f"ignored; declare them in its ProviderSpec and set RUNVOY_PLUGIN_API = {hookspecs.PLUGIN_API_VERSION}"
        )
    try:
        pm.register(module, name=name)
    except Exception as exc:  # PluginValidationError (a hook's signature), ValueError (a name taken twice)
        return _describe_error(exc)
    unknown = _unknown_hooks(pm, module)
    if unknown:
        pm.unregister(module)
        known = ", ".join(sorted(_spec_names()))
        return f"implements no such hook: {', '.join(unknown)} (runvoy's hooks: {known})"
    # only this plugin's implementation, called the pluggy way (so specname= is honoured)
    others = [plugin for plugin in pm.get_plugins() if plugin is not module]
    register_providers = pm.subset_hook_caller("runvoy_register_providers", remove_plugins=others)
    with registry.plugin_scope(name, dist, version) as scope:
        try:
            register_providers(registry=registry)
        except Exception as exc:
            scope.discard()  # keep nothing half-registered from a plugin that failed
            pm.unregister(module)
            return _describe_error(exc)
    return None


def _unknown_hooks(pm: pluggy.PluginManager, module: Any) -> list[str]:
    """The plugin's hook implementations that match no hookspec (``check_pending``, for one plugin)."""
    unknown = []
    for caller in pm.get_hookcallers(module) or []:
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is module and not impl.optionalhook:
                unknown.append(caller.name)
    return sorted(set(unknown))


def _spec_names() -> list[str]:
    return [name for name in vars(hookspecs) if name.startswith("runvoy_")]


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, PluginError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


_CACHE: LoadedPlugins | None = None


def get_plugins(refresh: bool = False) -> LoadedPlugins:
    global _CACHE
    if _CACHE is None or refresh:
        _CACHE = load_plugins()
    return _CACHE
