"""The provider template (examples/provider-template) is built and installed the way a third party would —
wheels of runvoy and of the template into a fresh virtual environment — and passes the whole provider kit there,
importing nothing from this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "provider-template"


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done  # type: ignore[no-any-return]


@pytest.mark.timeout(1200)
def test_the_template_passes_the_kit_installed_from_wheels(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run([*_uv(), "build", "--wheel", "--out-dir", str(wheels), str(ROOT)])
    _run([*_uv(), "build", "--wheel", "--out-dir", str(wheels), str(TEMPLATE)])
    runvoy_wheel = next(wheels.glob("runvoy-*.whl"))
    template_wheel = next(wheels.glob("runvoy_template-*.whl"))
    venv = tmp_path / "venv"
    _run([*_uv(), "venv", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    _run(
        [
            *_uv(),
            "pip",
            "install",
            "--python",
            str(python),
            f"runvoy[testing] @ {runvoy_wheel.as_uri()}",
            str(template_wheel),
        ]
    )
    workdir = tmp_path / "template-tests"
    shutil.copytree(TEMPLATE / "tests", workdir / "tests")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNVOY_", "PYTHON", "VIRTUAL_ENV"))}
    env["RUNVOY_DISABLE_PLUGIN_AUTOLOAD"] = "0"
    done = subprocess.run(
        [str(python), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "--rootdir", str(workdir)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
    # it really ran against the installed wheels, not this checkout
    where = _run([str(python), "-c", "import runvoy_core; print(runvoy_core.__file__)"], cwd=workdir, env=env)
    assert str(venv) in where.stdout
