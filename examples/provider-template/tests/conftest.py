"""Every test gets its own RUNVOY_HOME (the kit's ``runvoy_home``, from runvoy's pytest plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(runvoy_home: Path) -> Path:
    return runvoy_home


@pytest.fixture
def provider(runvoy_home: Path):  # type: ignore[no-untyped-def]
    from runvoy_template.provider import create_provider

    from runvoy_core.config import load_settings

    made = create_provider({}, load_settings())
    yield made
    for state in made.compute.list_active():
        made.compute.stop(state.ref, 0, force=True)
    made.close()
