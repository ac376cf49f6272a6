"""The four provider-facing interfaces. A provider implements compute and logs; store and locks are optional
(the core then keeps records and lock registers in its local SQLite database)."""

from runvoy_core.ports.compute import ComputePort, TaskPhase, TaskSpec, TaskState
from runvoy_core.ports.locks import LockRegister, Versioned
from runvoy_core.ports.logs import LogsPort
from runvoy_core.ports.provider import Capability, Provider
from runvoy_core.ports.store import ExecutionPage, ExecutionQuery, StorePort

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
