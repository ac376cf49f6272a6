"""`runvoy --help` is printed from a cache without importing click, and is exactly what click prints
(decision 1412)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNVOY = str(Path(sys.executable).parent / "runvoy")


def _help(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args, RUNVOY, "--help"], env=env, capture_output=True, text=True, timeout=60
    )


def _click_help(env: dict[str, str]) -> str:
    probe = "import sys; sys.argv = ['runvoy', '--help']\nfrom runvoy_cli.main import main\nmain()"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout


@pytest.mark.parametrize("columns", ["60", "80", "100", "200"])
def test_the_cached_help_is_what_click_prints(runvoy_home: Path, columns: str) -> None:
    env = {**os.environ, "RUNVOY_HOME": str(runvoy_home), "COLUMNS": columns}
    first, second = _help(env), _help(env)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout == _click_help(env)
    assert list((runvoy_home / "cache").glob("help-*.txt")), "the first --help did not store its text"


def test_the_cached_help_imports_no_click(runvoy_home: Path) -> None:
    env = {**os.environ, "RUNVOY_HOME": str(runvoy_home)}
    _help(env)  # store it
    done = _help(env, "-X", "importtime")
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "runvoy_cli.entry" in imported
    assert not {"click", "msgspec", "runvoy_cli.main", "runvoy_core.api"} & imported


def test_the_cache_is_what_is_printed(runvoy_home: Path) -> None:
    """Proves the cache answers: a planted text for this key is what comes out."""
    env = {**os.environ, "RUNVOY_HOME": str(runvoy_home)}
    _help(env)
    (cached,) = (runvoy_home / "cache").glob("help-*.txt")
    cached.write_text("planted\n")
    assert _help(env).stdout == "planted\n"


def test_help_without_a_usable_home_still_prints(tmp_path: Path) -> None:
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("")
    env = {**os.environ, "RUNVOY_HOME": str(blocker)}
    done = _help(env)
    assert done.returncode == 0 and done.stdout == _click_help({**os.environ, "RUNVOY_HOME": str(tmp_path)})


def test_help_into_a_closed_pipe_is_quiet(runvoy_home: Path) -> None:
    env = {**os.environ, "RUNVOY_HOME": str(runvoy_home)}
    _help(env)
    done = subprocess.run(
        f"{sys.executable} {RUNVOY} --help | head -c 1", shell=True, env=env, capture_output=True, timeout=60
    )
    assert done.stderr == b""
