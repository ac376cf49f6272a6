"""runvoy's test kit as a pytest plugin (entry point ``pytest11`` ``runvoy``; ``pip install 'runvoy[testing]'``).

It registers the kit's fixtures (``runvoy_home``) and a hypothesis profile for loaded machines; it makes
nothing autouse, so installing runvoy changes no other project's tests. The conformance suites live in
``runvoy_core.testing.conformance``: subclass them (docs/providers.md, "Testing with the conformance kit").
"""

from __future__ import annotations

import pytest

from runvoy_core.testing.fixtures import runvoy_home

__all__ = ["runvoy_home"]


def pytest_configure(config: pytest.Config) -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is optional for a provider's suite
        return
    # a loaded machine stalls any example: time is never a property's failure
    settings.register_profile("runvoy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("runvoy")
