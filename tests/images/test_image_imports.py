"""The image code costs nothing to a command or a run that names no image."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)), file=sys.stderr)"
    # unmeasured under scripts/test.sh's coverage run, whose coverage would import its own modules (sqlite3...)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env, check=True
    )
    return set(result.stderr.strip().splitlines()[-1].split())


def test_help_and_an_image_less_run_import_no_image_code(tmp_path: Path) -> None:
    help_modules = _modules_after(
        "import runvoy_cli.main as m\ntry:\n    m.cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass"
    )
    run_modules = _modules_after(
        "import os\n"
        f"os.environ['RUNVOY_HOME'] = {str(tmp_path)!r}\n"
        "from runvoy_core.api import Runvoy\n"
        "assert Runvoy().run('true').exit_code == 0"
    )
    for modules in (help_modules, run_modules):
        assert not {m for m in modules if m.startswith("runvoy_core.images")}
        assert "urllib.request" not in modules or "runvoy_core.images.registry" not in modules


def test_the_image_package_imports_only_the_standard_library_and_msgspec() -> None:
    # a run with an image imports all of it before it starts: pydantic alone would cost more than the
    # check's budget (decision 0804)
    modules = _modules_after(
        "import runvoy_core.images.registry, runvoy_core.images.policy, runvoy_core.images.check"
    )
    third_party = {m.split(".")[0] for m in modules if not m.startswith("_")} - set(sys.stdlib_module_names)
    assert third_party <= {
        "runvoy_core",
        "msgspec",
        "typing_extensions",
        "_distutils_hack",
        "sitecustomize",
    }, third_party
