"""Where runvoy keeps its files by default (standard library plus platformdirs: every command asks)."""

from __future__ import annotations

import os
from pathlib import Path


def default_config_path() -> Path:
    explicit = os.environ.get("RUNVOY_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("runvoy")) / "config.toml"


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("runvoy"))
