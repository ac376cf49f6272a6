"""runvoy: run a command in an ephemeral cloud container (or on this machine).

``from runvoy_core import Runvoy`` is lazy: importing the package loads nothing heavy, so the local
supervisor and ``runvoy --help`` stay fast.
"""

from __future__ import annotations

import sys as _sys

# not `from typing import TYPE_CHECKING`: the local supervisor imports this package and typing costs it ~7 ms
TYPE_CHECKING = False
__version__ = "0.1.0"

# A measured test run (scripts/test.sh, decision 2142) starts coverage in every Python process through a .pth
# file. The local supervisor runs without site (`python -S`), which reads no .pth: in such a run only, site
# runs here, before the supervisor's modules are imported, and starts coverage the same way.
if _sys.flags.no_site:
    import os as _os

    if _os.environ.get("COVERAGE_PROCESS_CONFIG"):
        import site as _site

        _site.main()

if TYPE_CHECKING:
    from typing import Any

    from runvoy_core.api import Runvoy
    from runvoy_core.errors import RunvoyError
    from runvoy_core.locks import check_fence
    from runvoy_core.models import Execution, ExecutionRequest, LogEvent, Resources, Status

_LAZY = {
    "Runvoy": "runvoy_core.api",
    "RunvoyError": "runvoy_core.errors",
    "check_fence": "runvoy_core.locks",
    "Execution": "runvoy_core.models",
    "ExecutionRequest": "runvoy_core.models",
    "LogEvent": "runvoy_core.models",
    "Resources": "runvoy_core.models",
    "Status": "runvoy_core.models",
}

__all__ = [
    "Execution",
    "ExecutionRequest",
    "LogEvent",
    "Resources",
    "Runvoy",
    "RunvoyError",
    "Status",
    "__version__",
    "check_fence",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runvoy_core' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
