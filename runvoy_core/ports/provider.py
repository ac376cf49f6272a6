"""A provider: a bundle of the four ports. What it can do is declared in its ``ProviderSpec``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from runvoy_core.ports.capabilities import Capability
from runvoy_core.ports.compute import ComputePort
from runvoy_core.ports.locks import LockRegister
from runvoy_core.ports.logs import LogsPort
from runvoy_core.ports.store import StorePort

__all__ = ["Capability", "Provider"]


@runtime_checkable
class Provider(Protocol):
    name: str
    region: str | None
    compute: ComputePort
    logs: LogsPort
    store: StorePort | None
    """None: the core keeps this provider's records in its local SQLite store."""
    locks: LockRegister | None
    """None: the core uses its local SQLite lock register (locks then only hold on this machine)."""

    def close(self) -> None: ...
