"""The local provider: the four ports over processes on this machine and SQLite under RUNVOY_HOME."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runvoy_core.config import Settings
from runvoy_core.providers.local.compute import LocalCompute
from runvoy_core.providers.local.config import LocalConfig
from runvoy_core.providers.local.logs import LocalLogs
from runvoy_core.providers.local.register import LocalLockRegister
from runvoy_core.providers.local.store import LocalStore


class LocalProvider:
    name = "local"
    region: str | None = None
    # the supervisor records the end within milliseconds; the runner may poll this provider often
    poll_interval_min = 0.01
    poll_interval_max = 0.2

    def __init__(self, home: Path, config: LocalConfig | None = None) -> None:
        self.home = Path(home)
        self.config = config or LocalConfig()
        self.compute = LocalCompute(self.home, self.config)
        self.logs = LocalLogs(self.home)
        self.store = LocalStore(self.home)
        self.locks = LocalLockRegister(self.home)

    def setup(self, dry_run: bool = False) -> list[dict[str, Any]]:
        exists = (self.home / "state.db").exists()
        if exists:
            action = "exists"
        elif dry_run:
            action = "would create"
        else:
            self.store.resolve_prefix("0")  # opening the databases creates their schema
            self.logs.read("setup", limit=1)
            action = "created"
        return [{"resource": "sqlite databases", "action": action, "detail": str(self.home)}]

    def close(self) -> None:
        for part in (self.compute, self.logs, self.store, self.locks):
            part.close()


def create_provider(config: LocalConfig | dict[str, Any] | None, settings: Settings) -> LocalProvider:
    if not isinstance(config, LocalConfig):
        config = LocalConfig.model_validate(config or {})
    return LocalProvider(settings.home, config)
