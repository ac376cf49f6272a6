"""Authentication: ``Authorization: Bearer rvk_...`` checked by the team core's KeyRing, an optional second
factor (``X-Runvoy-TOTP``), then the key's rate limit; the request then runs as that caller
(``runvoy_core.team.context.calling_as``), which is what the permission checks, the audit log and the runner
read. Every refused sign-in appends an audit entry; an address that keeps failing is slowed down (429) before
its attempts reach the store. The key is never logged, echoed or audited (only its id)."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

import anyio.to_thread

from runvoy_core.errors import InvalidToken
from runvoy_core.team.context import calling_as
from runvoy_server.middleware.asgi import App, Receive, Scope, Send, header

if TYPE_CHECKING:
    from runvoy_server.state import ServerState

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/v1/openapi.json", "/v1/docs", "/v1/docs/oauth2-redirect"})
"""Served without a key: the probes of a load balancer, and the API's description (it holds no data)."""
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([!-~]{1,512})")
_KEY_ID = re.compile(r"rvk_([0-9a-f]{16})_")


def client_address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def key_resource(token: str | None) -> str:
    """What a refused sign-in was for: the key id the token names (never the token itself)."""
    found = _KEY_ID.match(token or "")
    return f"key:{found.group(1)}" if found else "key:-"


class AuthMiddleware:
    def __init__(self, app: App, *, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # the API has none: nothing may slip past authentication that way
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http" or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        state = self.state
        address = client_address(scope)
        where = f"address:{address}"
        state.failures.check(where, "this address (after failed sign-ins)")
        given = header(scope, b"authorization")
        found = _BEARER.fullmatch(given) if given is not None else None
        token = found.group(1) if found else None
        try:
            if token is None:
                raise InvalidToken(
                    "this request carries no API key"
                    if given is None
                    else "the Authorization header is not 'Bearer <API key>'",
                    hint="send the header Authorization: Bearer rvk_...; sign in with: runvoy login",
                )
            caller = await anyio.to_thread.run_sync(state.keyring.authenticate, token)
            code = header(scope, b"x-runvoy-totp")
            if code is not None:
                if not await anyio.to_thread.run_sync(state.verify_totp, caller, code):
                    raise InvalidToken(
                        "the TOTP code (X-Runvoy-TOTP) is wrong or expired",
                        hint="send the current code of your authenticator app",
                    )
                caller = dataclasses.replace(caller, second_factor=True)
        except InvalidToken as exc:
            state.failures.spend(where)
            await anyio.to_thread.run_sync(
                state.audit_refused, "auth.sign_in", key_resource(token), address, exc.message
            )
            raise
        caller = dataclasses.replace(caller, address=address)
        state.keys.take(f"key:{caller.key_id or caller.name}", f"API key {caller.key_id or caller.name}")
        with calling_as(caller):
            await self.app(scope, receive, send)
