"""Every test gets its own RUNVOY_HOME and config file, so nothing leaks between tests or from the user."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def runvoy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "runvoy-home"
    home.mkdir()
    monkeypatch.setenv("RUNVOY_HOME", str(home))
    monkeypatch.setenv("RUNVOY_CONFIG", str(tmp_path / "config.toml"))
    for var in ("RUNVOY_PROVIDER", "RUNVOY_PROFILE", "RUNVOY_PLUGINS_ALLOW", "RUNVOY_PLUGINS_BLOCK"):
        monkeypatch.delenv(var, raising=False)
    return home
