"""pytest fixtures for any runvoy test suite, a provider's included. In a conftest.py:

    from runvoy_core.testing.fixtures import runvoy_home  # noqa: F401  (autouse)

Every test then gets its own RUNVOY_HOME and config file, and no RUNVOY_* selection leaks in from the
machine running the tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SELECTION_VARIABLES = ("RUNVOY_PROVIDER", "RUNVOY_PROFILE", "RUNVOY_PLUGINS_ALLOW", "RUNVOY_PLUGINS_BLOCK")


@pytest.fixture(autouse=True)
def runvoy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "runvoy-home"
    home.mkdir()
    monkeypatch.setenv("RUNVOY_HOME", str(home))
    monkeypatch.setenv("RUNVOY_CONFIG", str(tmp_path / "config.toml"))
    for var in SELECTION_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return home
