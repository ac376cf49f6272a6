"""The team admin surface of the CLI's client (``runvoy users|keys|policies``, decision 1519): the runvoy server
the client works through (its admin routes, as the key's owner may), or, without a server, the provider's
document store itself, for whoever holds its credentials (the admin of a server, before or beside it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runvoy_cli.context import state

if TYPE_CHECKING:
    from runvoy_core.team.admin import TeamAdmin


def team_admin(provider: str | None = None) -> TeamAdmin:
    return state().runvoy(provider).team()
