"""Every test gets its own RUNVOY_HOME and config file, so nothing leaks between tests or from the user."""

from runvoy_core.testing.fixtures import runvoy_home

__all__ = ["runvoy_home"]
