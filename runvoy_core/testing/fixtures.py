"""pytest fixtures for any runvoy test suite, a provider's included. They are registered by the kit's pytest
plugin (``runvoy_core.testing.plugin``, entry point ``pytest11``), so a suite uses them by name, with no import::

    @pytest.fixture(autouse=True)
    def _isolated(runvoy_home):  # every test gets its own RUNVOY_HOME and config file
        return runvoy_home

No RUNVOY_* selection leaks in from the machine running the tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SELECTION_VARIABLES = (
    "RUNVOY_PROVIDER",
    "RUNVOY_PROFILE",
    "RUNVOY_PLUGINS_ALLOW",
    "RUNVOY_PLUGINS_BLOCK",
    "RUNVOY_SERVER",  # a developer's server must not take the tests' commands (decision 1511)
)


@pytest.fixture
def runvoy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RUNVOY_HOME and config file for this test, and no provider/profile selection from outside."""
    home = tmp_path / "runvoy-home"
    home.mkdir()
    monkeypatch.setenv("RUNVOY_HOME", str(home))
    monkeypatch.setenv("RUNVOY_CONFIG", str(tmp_path / "config.toml"))
    # every CLI subprocess starts cold, so a test never depends on whether a warm process was up yet
    # (runvoy_cli.warm; tests/startup/test_warm.py runs the same commands both ways)
    monkeypatch.setenv("RUNVOY_WARM", "0")
    # no registry is reachable from a test: runs of a cloud's default image (and any other) skip asking it,
    # the [images] policy still applies; the image tests turn it back on against their own registry
    monkeypatch.setenv("RUNVOY_IMAGES__CHECK", "false")
    for var in SELECTION_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return home
