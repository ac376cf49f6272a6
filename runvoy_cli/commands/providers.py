"""``runvoy providers``: installed providers, where they come from, what they can do, and plugins that failed.

It prints ``Runvoy.list_providers`` (decision 1512): through a server, the providers installed on the server."""

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

    configured = True
    try:
        rv = state().runvoy()
    except RunvoyError as exc:  # a broken config must not hide what is installed
        warn(f"config not loaded: {exc.message}")
        configured = False
        from runvoy_core.engine import describe_providers
        from runvoy_core.plugins.manager import get_plugins

        found = describe_providers(get_plugins(), home=None, default=None)
    else:
        found = rv.list_providers()
    warnings = found.pop("warnings", None) or []
    for text in warnings:
        warn(text)
    providers: list[dict[str, Any]] = found["providers"]
    failures: list[dict[str, Any]] = found["failures"]
    catalog: dict[str, Any] | None = found["prices"]
    if as_json:
        print_json(found)
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
    if configured:
        message("* default provider (set with --provider, RUNVOY_PROVIDER or provider = ... in the config)")
    for failure in failures:
        source = f" ({failure['distribution']})" if failure["distribution"] else ""
        warn(f"plugin {failure['plugin']!r}{source} failed to load: {failure['error']}")
    for notice in found["notices"]:
        warn(notice)
    if found["skipped"]:
        message(f"skipped by RUNVOY_PLUGINS_ALLOW/BLOCK: {', '.join(found['skipped'])}")
    if catalog:
        line = f"prices: catalog {catalog.get('version')} ({catalog.get('origin')}"
        if catalog.get("effective_date"):
            line += f", effective {catalog['effective_date']}"
        if catalog.get("age_days") is not None:
            line += f", {catalog['age_days']} days old"
        message(line + ")")
        for text in catalog.get("warnings") or []:
            warn(text)
