"""Loading a test-support package that lives beside a provider's tests.

Tests run with ``--import-mode=importlib``, and several providers' test folders hold a package with the
same folder name (``fakes``); each is loaded under a repository-unique module name instead.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_package(folder: Path, name: str) -> ModuleType:
    """Import the package in ``folder`` as ``name`` (once; later calls return the same module)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"no package in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
