"""The four provider-facing interfaces. A provider implements compute and logs; store and locks are optional
(the core then keeps records and lock registers in its local SQLite database).

The names below are loaded on first use: importing ``runvoy_core.ports.capabilities`` (which plugin loading
does on every command) must not build the pydantic models of ``ports.compute``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runvoy_core.ports.capabilities import Capability
    from runvoy_core.ports.compute import ComputePort, TaskPhase, TaskSpec, TaskState
    from runvoy_core.ports.locks import LockRegister, Versioned
    from runvoy_core.ports.logs import LogsPort
    from runvoy_core.ports.provider import Provider
    from runvoy_core.ports.store import ExecutionPage, ExecutionQuery, StorePort

_LAZY = {
    "Capability": "runvoy_core.ports.capabilities",
    "ComputePort": "runvoy_core.ports.compute",
    "TaskPhase": "runvoy_core.ports.compute",
    "TaskSpec": "runvoy_core.ports.compute",
    "TaskState": "runvoy_core.ports.compute",
    "LockRegister": "runvoy_core.ports.locks",
    "Versioned": "runvoy_core.ports.locks",
    "LogsPort": "runvoy_core.ports.logs",
    "Provider": "runvoy_core.ports.provider",
    "ExecutionPage": "runvoy_core.ports.store",
    "ExecutionQuery": "runvoy_core.ports.store",
    "StorePort": "runvoy_core.ports.store",
}

__all__ = [
    "Capability",
    "ComputePort",
    "ExecutionPage",
    "ExecutionQuery",
    "LockRegister",
    "LogsPort",
    "Provider",
    "StorePort",
    "TaskPhase",
    "TaskSpec",
    "TaskState",
    "Versioned",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runvoy_core.ports' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
