"""What the install tests share: this checkout, a clean environment for a newcomer's shell, and uv."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# variables that would carry this developer's set-up (a virtual environment, uv or runvoy settings, pyenv)
# into what must behave like a newcomer's shell; the machine's proxy and CA settings are kept
_PERSONAL = ("VIRTUAL_ENV", "UV_", "PYTHON", "PYENV", "CONDA", "RUNVOY_", "XDG_", "PIPX_", "PIP_")


def clean_env(home: Path, path: list[str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(_PERSONAL)}
    # pip (in pipx's venvs) needs the machine's CA bundle where a proxy re-signs TLS
    for key in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT"):
        if key in os.environ:
            env[key] = os.environ[key]
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join(path)
    env["UV_CACHE_DIR"] = uv_cache_dir()  # only downloads are reused: every environment is still made anew
    # a newcomer's commands start the warm process (decision 1414) as they would for anyone; it must not
    # outlive the test by its usual ten idle minutes
    env["RUNVOY_WARM_IDLE"] = "1"
    return env


def run(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{args}\nexit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done


@functools.cache
def uv() -> str:
    """The uv scripts/test.sh uses (scripts/bootstrap.py finds or fetches it)."""
    return run([sys.executable, str(ROOT / "scripts" / "bootstrap.py"), "--print-uv"]).stdout.strip()


@functools.cache
def uv_cache_dir() -> str:
    """This user's uv cache, which the environments under test may share: uv locks it for concurrent use."""
    return os.environ.get("UV_CACHE_DIR") or run([uv(), "cache", "dir"]).stdout.strip()


def copy_checkout(into: Path) -> Path:
    """The files a clone would have once the work tree is committed: tracked and new, not ignored."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file someone deleted in the work tree is gone from the commit too
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    return into
