"""The team admin surface of the CLI's client (``runvoy users|keys|policies``, decision 1519): the runvoy server
the client works through (its admin routes, as the key's owner may), or, without a server, the provider's
document store itself, for whoever holds its credentials (the admin of a server, before or beside it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runvoy_cli.context import state

if TYPE_CHECKING:
    from runvoy_core.team.admin import TeamAdmin


def team_admin(provider: str | None = None) -> TeamAdmin:
    client = state().runvoy(provider)
    if client.server is not None:
        from runvoy_core.remote.admin import RemoteTeamAdmin
        from runvoy_core.remote.backend import RemoteBackend

        backend = client.backend
        if isinstance(backend, RemoteBackend):
            return RemoteTeamAdmin(backend.client)
    from runvoy_core.errors import CapabilityMissing
    from runvoy_core.ports.optional import DocumentStore
    from runvoy_core.team.admin import LocalTeamAdmin

    store = client.store
    if not isinstance(store, DocumentStore):
        raise CapabilityMissing(
            f"provider {client.provider_name!r} has no document store, where a runvoy server keeps its users, "
            "keys and policies",
            hint="use the provider the server runs on (--provider), or a runvoy server (runvoy login)",
        )
    return LocalTeamAdmin(store)
