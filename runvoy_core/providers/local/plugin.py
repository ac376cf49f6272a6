"""Entry point of the built-in local provider (group ``runvoy``, name ``local``). Imports nothing heavy."""

from __future__ import annotations

from runvoy_core.plugins import ProviderRegistry, ProviderSpec, hookimpl

RUNVOY_PLUGIN_API = 1

CAPABILITIES = frozenset({"graceful_stop", "native_timeout", "detached_supervision", "secrets"})


@hookimpl
def runvoy_register_providers(registry: ProviderRegistry) -> None:
    registry.register(
        ProviderSpec(
            name="local",
            factory="runvoy_core.providers.local.provider:create_provider",
            config_model="runvoy_core.providers.local.config:LocalConfig",
            capabilities=CAPABILITIES,
            description="processes on this machine under a detached supervisor; SQLite state (the default)",
        )
    )
