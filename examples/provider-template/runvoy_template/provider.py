"""The factory runvoy calls (``create_provider(config, settings)``) and the provider object: its ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runvoy_core.config import Settings
from runvoy_template.compute import TemplateCompute
from runvoy_template.config import TemplateConfig
from runvoy_template.logs import TemplateLogs


class TemplateProvider:
    name = "template"
    region: str | None = None

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.compute = TemplateCompute(state_dir)
        self.logs = TemplateLogs(state_dir)
        self.store = None  # records in the core's SQLite store under RUNVOY_HOME
        self.locks = None  # and locks in its lock register

    def setup(self, dry_run: bool = False) -> list[dict[str, Any]]:
        """``runvoy setup``: create the state directory (``dry_run`` changes nothing)."""
        if self.state_dir.is_dir():
            action = "exists"
        elif dry_run:
            action = "would create"
        else:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            action = "created"
        return [{"resource": "state directory", "action": action, "detail": str(self.state_dir)}]

    def close(self) -> None:
        pass


def create_provider(
    config: TemplateConfig | dict[str, Any] | None, settings: Settings | None
) -> TemplateProvider:
    if not isinstance(config, TemplateConfig):
        config = TemplateConfig.model_validate(config or {})
    if config.state_dir:
        state_dir = Path(config.state_dir)
    else:
        assert settings is not None, "the default state directory lives under RUNVOY_HOME"
        state_dir = Path(settings.home) / "template"
    state_dir.mkdir(parents=True, exist_ok=True)
    return TemplateProvider(state_dir)
