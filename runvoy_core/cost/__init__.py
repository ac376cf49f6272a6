"""Cost of runs: a dated price catalog (package data), billing rules, the calculator, budgets, refresh.

Layers, lightest first: ``rules`` and ``catalog`` and ``pricing`` use the standard library only (the fast
path of ``runvoy cost estimate``); ``calculator``, ``budgets`` and ``report`` build pydantic records;
``refresh`` reads the providers' price APIs through their ``source.PriceSource``. Importing this package loads nothing.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "catalog_info": "runvoy_core.cost.catalog",
    "estimate": "runvoy_core.cost.calculator",
    "cost_of_execution": "runvoy_core.cost.calculator",
    "validate_size": "runvoy_core.cost.calculator",
    "check_budgets": "runvoy_core.cost.budgets",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runvoy_core.cost' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
