"""A provider: a bundle of the four ports plus what it can do."""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

from runvoy_core.ports.compute import ComputePort
from runvoy_core.ports.locks import LockRegister
from runvoy_core.ports.logs import LogsPort
from runvoy_core.ports.store import StorePort


class Capability(enum.StrEnum):
    IMAGE = "image"  # runs a container image
    SPOT = "spot"
    ARM64 = "arm64"
    GPU = "gpu"
    SECRETS = "secrets"
    GRACEFUL_STOP = "graceful_stop"
    NATIVE_TIMEOUT = "native_timeout"  # enforces the timeout itself, even with nobody watching
    NATIVE_LOG_TAIL = "native_log_tail"
    DETACHED_SUPERVISION = "detached_supervision"


@runtime_checkable
class Provider(Protocol):
    name: str
    region: str | None
    capabilities: frozenset[Capability]
    compute: ComputePort
    logs: LogsPort
    store: StorePort | None
    """None: the core keeps this provider's records in its local SQLite store."""
    locks: LockRegister | None
    """None: the core uses its local SQLite lock register (locks then only hold on this machine)."""

    def close(self) -> None: ...
