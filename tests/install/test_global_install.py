"""The global installs the README tells users about, `uv tool install 'runvoy[aws]'` and `pipx install
'runvoy[aws]'`, from the four wheels built from this checkout (a local folder as the index next to PyPI), each
into a HOME of its own; the installed `runvoy` runs a command and prints its help (decision 2101)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, clean_env, run, uv

pytestmark = pytest.mark.slow  # builds four wheels and installs them twice: about a minute


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One build of the workspace's wheels for the module: runvoy and its three providers."""
    out = tmp_path_factory.mktemp("wheels")
    run([uv(), "build", "--all-packages", "--wheel", "--out-dir", str(out)], cwd=ROOT)
    names = sorted(wheel.name.split("-")[0] for wheel in out.glob("*.whl"))
    assert names == ["runvoy", "runvoy_aws", "runvoy_azure", "runvoy_gcp"], names
    yield out


def _check_installed(runvoy: Path, env: dict[str, str], workdir: Path) -> None:
    assert runvoy.is_file(), f"no {runvoy}"
    done = run([str(runvoy), "run", "echo hello"], env=env, cwd=workdir)
    assert done.stdout.splitlines() == ["hello"], done.stdout + done.stderr
    helped = run([str(runvoy), "--help"], env=env, cwd=workdir)
    assert helped.stdout.startswith("Usage: runvoy"), helped.stdout
    providers = json.loads(run([str(runvoy), "providers", "--json"], env=env, cwd=workdir).stdout)
    # the [aws] extra brought the AWS provider, and nothing else came along
    assert sorted(p["name"] for p in providers["providers"]) == ["aws", "local"], providers
    # the installed copy runs, in its own environment under HOME, not this checkout's sources
    python = runvoy.resolve().parent / "python"  # both link the command to their environment's bin/
    home = Path(env["HOME"]).resolve()
    assert python.parent.resolve().is_relative_to(home), python
    where = run([str(python), "-c", "import runvoy_core; print(runvoy_core.__file__)"], env=env, cwd=workdir)
    assert Path(where.stdout.strip()).resolve().is_relative_to(home), where.stdout


def test_uv_tool_install(wheels: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    bin_dir = home / ".local" / "bin"
    env = clean_env(home, [str(bin_dir), "/usr/bin", "/bin"])
    run(
        [
            uv(),
            "tool",
            "install",
            "--find-links",
            str(wheels),
            "--python",
            sys.executable,
            "--no-python-downloads",
            "runvoy[aws]",
        ],
        env=env,
        cwd=tmp_path,
    )
    _check_installed(bin_dir / "runvoy", env, tmp_path)


def test_pipx_install(wheels: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    bin_dir = home / ".local" / "bin"
    env = clean_env(home, [str(bin_dir), "/usr/bin", "/bin"])
    run(
        [
            sys.executable,
            "-m",
            "pipx",
            "install",
            "--python",
            sys.executable,
            "--pip-args",
            f"--find-links {wheels} --disable-pip-version-check",
            "runvoy[aws]",
        ],
        env=env,
        cwd=tmp_path,
    )
    _check_installed(bin_dir / "runvoy", env, tmp_path)
