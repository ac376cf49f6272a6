"""The ``runvoy_*`` hooks a plugin may implement.

A plugin module is named by an entry point in the group ``runvoy``; it must not import a cloud SDK at
import time (factories are import strings, loaded on first use). It sets ``RUNVOY_PLUGIN_API = 2``; a plugin
of API 1 still loads, with a notice (decision 0025), and one declaring any other version is reported and skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from runvoy_core.backend import BackendFactory
    from runvoy_core.plugins.registry import ProviderRegistry

PROJECT = "runvoy"
PLUGIN_API_VERSION = 2
SUPPORTED_PLUGIN_APIS = (1, 2)
"""API 2 (decision 0025): capabilities are declared once, in the ProviderSpec, and optional features are the
Protocols of runvoy_core.ports.optional. An API 1 plugin written from the old docs keeps working."""
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    """Register one or more providers with ``registry.register(ProviderSpec(...))``."""


@hookspec
def runvoy_budget_alert(alert: dict[str, Any]) -> None:
    """A budget crossed an alert threshold or refused a run. ``alert`` is JSON-ready: budget name, period,
    scope, amount, spent, projected, threshold percent, currency, execution id (if any) and a message.
    Implementations must not raise; errors are logged and ignored."""


@hookspec
def runvoy_execution_finished(execution: dict[str, Any]) -> None:
    """An execution reached a terminal status (its JSON record). Must not raise."""


@hookspec
def runvoy_backends() -> dict[str, BackendFactory]:
    """The backends this plugin serves, by URL scheme (``{"http": factory, "https": factory}``): when a server
    is set (``Runvoy(server=URL)``, config key ``server``, RUNVOY_SERVER), ``Runvoy`` builds its backend with
    the factory of the URL's scheme (runvoy_core.backend.BackendFactory; decision 1511). Called only then, and
    the plugin module is imported on every command: import the client inside the factory, not here."""
    return {}
