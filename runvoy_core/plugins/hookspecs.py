"""The ``runvoy_*`` hooks a plugin may implement.

A plugin module is named by an entry point in the group ``runvoy``; it must not import a cloud SDK at
import time (factories are import strings, loaded on first use). It may set ``RUNVOY_PLUGIN_API = 1``;
a plugin declaring another major version is reported and skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from runvoy_core.plugins.registry import ProviderRegistry

PROJECT = "runvoy"
PLUGIN_API_VERSION = 1
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
