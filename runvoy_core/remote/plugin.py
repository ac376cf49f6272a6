"""Entry point of runvoy's remote client (group ``runvoy``, name ``remote``): serves the ``http`` and ``https``
schemes of the ``runvoy_backends`` hook. Imports nothing: the client is imported by the factory, only when a
server is configured (decision 1517)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runvoy_core.plugins import hookimpl

if TYPE_CHECKING:
    from runvoy_core.backend import Backend, BackendFactory
    from runvoy_core.config import Settings

RUNVOY_PLUGIN_API = 2


def create_backend(
    url: str, *, token: str | None, settings: Settings, provider: str | None, config: dict[str, Any]
) -> Backend:
    from runvoy_core.errors import ConfigError
    from runvoy_core.remote.backend import RemoteBackend

    if config:
        raise ConfigError(
            f"provider settings ({', '.join(sorted(config))}) cannot be given to a client of the runvoy server "
            f"at {url}: the server's own configuration decides them",
            hint="drop them, or leave the server unset to run on a provider of this machine",
        )
    return RemoteBackend(url, token, provider=provider)


@hookimpl
def runvoy_backends() -> dict[str, BackendFactory]:
    return {"http": create_backend, "https": create_backend}
