"""Who is calling, for the length of one request: set by the server's middleware, read by the permission
checks, the audit log and the runner (a run's ``user`` is its caller's name)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    """The user's or service account's name."""
    kind: str
    """``user`` or ``service``."""
    role: str
    """One of ROLES."""
    team: str
    key_id: str | None = None
    address: str | None = None
    """The client's address as the server saw it (after trusted proxies)."""
    second_factor: bool = False
    """The request carried a valid TOTP code (admin-only operations may require one)."""


_caller: ContextVar[Caller | None] = ContextVar("runvoy_caller", default=None)


def current_caller() -> Caller | None:
    return _caller.get()


@contextmanager
def calling_as(caller: Caller) -> Iterator[Caller]:
    token = _caller.set(caller)
    try:
        yield caller
    finally:
        _caller.reset(token)
