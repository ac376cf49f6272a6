"""``runvoy providers``: installed providers, where they come from, what they can do, and plugins that failed."""

from __future__ import annotations

from typing import Any

import click

from runvoy_cli.context import handle_errors, state
from runvoy_cli.output import json_option, message, print_json, print_table, warn


@click.command("providers")
@json_option
@handle_errors
def cli(as_json: bool) -> None:
    """List installed providers (name, distribution, version, capabilities) and plugins that failed to load.

    Loading a provider's plugin imports no cloud SDK; the SDK is imported when the provider is first used.
    """
    from runvoy_core.errors import RunvoyError
    from runvoy_core.plugins.manager import get_plugins

    plugins = get_plugins()
    home = None
    default = None
    try:
        settings = state().settings()
        home, default = settings.home, settings.provider
    except RunvoyError as exc:  # a broken config must not hide what is installed
        warn(f"config not loaded: {exc.message}")
    providers: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "default": spec.name == default,
            "distribution": spec.distribution,
            "version": spec.version,
            "plugin": spec.plugin,
            "capabilities": sorted(spec.capabilities),
            "description": spec.description,
            "install_extra": spec.install_extra,
        }
        for spec in plugins.registry.specs()
    ]
    failures = [
        {"plugin": f.plugin, "distribution": f.distribution, "error": f.error} for f in plugins.failures
    ]
    catalog = _catalog(home)
    if as_json:
        print_json(
            {
                "providers": providers,
                "failures": failures,
                "skipped": list(plugins.skipped),
                "notices": list(plugins.notices),
                "prices": catalog,
            }
        )
        return
    print_table(
        [
            [
                p["name"] + (" *" if p["default"] else ""),
                p["distribution"] or "(built in)",
                p["version"],
                ", ".join(p["capabilities"]) or "-",
                p["description"],
            ]
            for p in providers
        ],
        ["provider", "distribution", "version", "capabilities", "description"],
    )
    if default:
        message("* default provider (set with --provider, RUNVOY_PROVIDER or provider = ... in the config)")
    for failure in failures:
        source = f" ({failure['distribution']})" if failure["distribution"] else ""
        warn(f"plugin {failure['plugin']!r}{source} failed to load: {failure['error']}")
    for notice in plugins.notices:
        warn(notice)
    if plugins.skipped:
        message(f"skipped by RUNVOY_PLUGINS_ALLOW/BLOCK: {', '.join(plugins.skipped)}")
    if catalog:
        line = f"prices: catalog {catalog.get('version')} ({catalog.get('origin')}"
        if catalog.get("effective_date"):
            line += f", effective {catalog['effective_date']}"
        if catalog.get("age_days") is not None:
            line += f", {catalog['age_days']} days old"
        message(line + ")")
        for text in catalog.get("warnings") or []:
            warn(text)


def _catalog(home: Any) -> dict[str, Any] | None:
    try:
        from runvoy_core.cost import catalog_info
    except ImportError:
        return None
    try:
        info: dict[str, Any] = catalog_info(home)
    except Exception as exc:  # a damaged catalog is reported, the provider list still printed
        warn(f"price catalog unavailable: {exc}")
        return None
    return info
