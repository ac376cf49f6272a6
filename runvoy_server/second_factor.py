"""The second factor of a request (``X-Runvoy-TOTP``), checked with the team core's TOTP secrets (decision 1510)."""

from __future__ import annotations

from runvoy_core.ports.optional import DocumentStore
from runvoy_core.team.context import Caller


def verify(store: DocumentStore, caller: Caller, code: str) -> bool:
    from runvoy_core.team.totp import SecondFactor

    return SecondFactor(store).verify(caller.name, code, key_id=caller.key_id)
