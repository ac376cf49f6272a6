"""The README's set-up leaves bytecode behind (issue 14 item 1, decision 1406).

`python3 -m uv run runvoy ...` from a checkout installs runvoy editable and its dependencies from wheels.
With PYTHONDONTWRITEBYTECODE=1 (common in containers and CI) nothing writes `.pyc` files later, so unless
the install compiles them, every command compiles runvoy and pydantic from source. The test runs that
command on a copy of this checkout and counts the `.pyc` files it left.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.pyc",
    "node_modules",
    ".tools",
    ".*_cache",
    ".hypothesis",
    ".runvoy-home",
)


def uv_command() -> list[str]:
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    python3 = shutil.which("python3")
    if (
        python3 is not None
        and subprocess.run([python3, "-m", "uv", "--version"], capture_output=True).returncode == 0
    ):
        return [python3, "-m", "uv"]
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed (scripts/bootstrap.py --print-uv fetches it)")
    return [found]


def missing_pyc(package: Path) -> list[str]:
    tag = sys.implementation.cache_tag
    return sorted(
        str(py.relative_to(package))
        for py in package.rglob("*.py")
        if not (py.parent / "__pycache__" / f"{py.stem}.{tag}.pyc").exists()
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_set_up_compiles_runvoy_and_its_dependencies(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=IGNORED, symlinks=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        RUNVOY_HOME=str(tmp_path / "home"),
        RUNVOY_CONFIG=str(tmp_path / "none.toml"),
        UV_PYTHON=sys.executable,
    )
    done = subprocess.run(
        [*uv_command(), "run", "--frozen", "runvoy", "--help"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for package in ("runvoy_core", "runvoy_cli"):
        assert missing_pyc(checkout / package) == [], package
    site = next((checkout / ".venv" / "lib").glob("python3*/site-packages"))
    assert (site / "_editable_impl_runvoy.pth").exists()  # still the editable install the README makes
    for dependency in ("pydantic", "click", "yaml"):
        assert missing_pyc(site / dependency) == [], dependency
