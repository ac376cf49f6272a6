"""The README's first command, read from README.md itself, works where a newcomer runs it: a copy of the
checkout, HOME in a temp dir, no virtual environment and no uv on PATH, and a system Python that refuses pip
installs (PEP 668), as Debian's and Ubuntu's do, here also without pip and venv (decision 2101)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, clean_env, copy_checkout

# a system Python marked "externally managed": Debian/Ubuntu's, or Homebrew's on a macOS runner
_CANDIDATES = ("/usr/bin/python3", "/opt/homebrew/bin/python3", "/usr/local/bin/python3")
_PROBE = (
    "import os, sys, sysconfig; "
    "print(sys.version_info >= (3, 11) and "
    "os.path.isfile(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"
)


def readme_first_command() -> str:
    """The command under "# 1." in the README's "Two commands" block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the README's 'Two commands' section has no sh block"
    lines = block.group(1).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("# 1."))
    return next(line for line in lines[first + 1 :] if line.strip() and not line.startswith("#"))


def externally_managed_python() -> Path | None:
    for candidate in _CANDIDATES:
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run([candidate, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=60)
        if probe.stdout.strip() == "True":
            return Path(candidate)
    return None


def without_pip_and_venv(folder: Path) -> Path:
    """Modules that shadow pip, venv and ensurepip (PYTHONPATH comes before the standard library), as on a
    stock Debian without python3-pip and python3-venv."""
    for name in ("pip", "venv", "ensurepip"):
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('no {name} on this Python')\n")
    return folder


def test_the_readme_names_the_bootstrap_and_both_global_installs() -> None:
    command = readme_first_command()
    assert command.startswith("python3 scripts/bootstrap.py "), command
    assert "pip install" not in command
    # the commands tests/install/test_global_install.py runs from the built wheels
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "uv tool install 'runvoy[aws]'" in readme and "pipx install 'runvoy[aws]'" in readme
    guide = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    assert "uv tool install --find-links" in guide and "pipx install --pip-args='--find-links" in guide


def test_the_readmes_first_command_runs_on_an_externally_managed_python(tmp_path: Path) -> None:
    python = externally_managed_python()
    if python is None:
        pytest.skip(
            f"no Python >= 3.11 marked EXTERNALLY-MANAGED (PEP 668) among {', '.join(_CANDIDATES)}; "
            "on Debian/Ubuntu scripts/test.sh installs one (apt-get install python3)"
        )
    checkout = copy_checkout(tmp_path / "checkout")
    assert not (checkout / ".venv").exists()
    # `python3` is that Python; no .venv/bin, pyenv shims or ~/.local/bin before it
    path = [str(python.parent), "/usr/bin", "/bin"]
    env = clean_env(tmp_path / "home", path)
    env["PYTHONPATH"] = str(without_pip_and_venv(tmp_path / "blocked"))
    assert shutil.which("python3", path=env["PATH"]) == str(python.parent / "python3")
    for module in ("pip", "venv", "ensurepip"):
        probe = subprocess.run(
            ["python3", "-c", f"import {module}"], env=env, capture_output=True, timeout=60
        )
        assert probe.returncode != 0, module
    command = readme_first_command()

    first = subprocess.run(
        ["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True, timeout=600
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    assert first.stdout.splitlines() == ["hello"], first.stdout + first.stderr[-3000:]
    # the environment was made anew, by that Python
    assert (checkout / ".venv" / "bin" / "python").resolve() == python.resolve()
    if shutil.which("uv", path=env["PATH"]) is None:
        # no uv on PATH, so the bootstrap fetched it from the package index into the user's cache
        assert "fetching uv-" in first.stderr, first.stderr[-3000:]
        assert any((tmp_path / "home").glob(".cache/runvoy/bootstrap/uv-*/uv*"))

    # a second run needs no network: the fetched uv and the .venv are reused
    again = subprocess.run(
        ["bash", "-c", command],
        cwd=checkout,
        env={**env, "UV_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-5000:]
    assert again.stdout.splitlines() == ["hello"]
    assert "fetching" not in again.stderr
