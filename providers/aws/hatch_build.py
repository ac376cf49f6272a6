"""Hatchling build hook: an editable install byte-compiles the package sources in place (decision 1406).

An editable wheel holds only a `.pth` file pointing at this checkout, so no installer compiles runvoy's
modules, and with `PYTHONDONTWRITEBYTECODE=1` Python would compile them from source on every command.
A regular wheel needs nothing here: pip, and uv with `compile-bytecode`, compile its files at install.
The `.pyc` files use timestamp invalidation, so an edited source makes Python ignore its stale `.pyc`.
"""

from __future__ import annotations

import compileall
import py_compile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CompileInPlaceHook(BuildHookInterface):  # type: ignore[misc]  # hatchling is in the build env only
    PLUGIN_NAME = "compile-in-place"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version != "editable":
            return
        for package in self.build_config.packages:
            source = Path(self.root) / package
            ok = compileall.compile_dir(
                source,
                quiet=1,
                invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP,
            )
            if not ok:
                # a module that does not compile fails at import with a clearer error than a build failure
                self.app.display_warning(f"could not byte-compile every module under {source}")
