"""FastAPI dependencies for routes: who is calling, and the Backend that answers for them.

Routes take ``TeamBackend`` through ``team_backend`` and call it; they never check a permission themselves
(TeamBackend does, decision 1501)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from runvoy_core.errors import InvalidToken
from runvoy_core.team.context import Caller, current_caller

if TYPE_CHECKING:
    from runvoy_core.team.guarded import TeamBackend
    from runvoy_server.state import ServerState


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.runvoy
    return state


def caller() -> Caller:
    """The authenticated caller of this request (the auth middleware set it)."""
    found = current_caller()
    if found is None:  # a route under a public path asked for a caller: a wiring mistake, not the client's
        raise InvalidToken("this request carries no API key", hint="send Authorization: Bearer rvk_...")
    return found


def team_backend(request: Request) -> TeamBackend:
    """The engine of this process, seen through the caller's roles, team and policies."""
    from runvoy_core.team.guarded import TeamBackend

    state = server_state(request)
    return TeamBackend(
        state.engine,
        state.documents,
        caller(),
        audit=state.audit,
        require_second_factor=state.settings.serve.require_totp_for_admin,
    )
