"""Every test gets its own RUNVOY_HOME and config file (the kit's ``runvoy_home`` fixture, from its pytest
plugin), so nothing leaks between tests or from the user."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(runvoy_home: Path) -> Path:
    return runvoy_home
