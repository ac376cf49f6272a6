"""The local provider's billing rule and its zero prices (runs on this machine cost nothing; a finished run
shows what it would have cost on each cloud provider that declares prices)."""

from __future__ import annotations

from pathlib import Path

from runvoy_core.cost.source import PriceSource

# files next to this module: the core is installed as files, and importlib.resources (with zipfile and
# tempfile behind it) would cost every local run's cost computation more than reading them does
DATA = Path(__file__).parent / "data"

PRICING = PriceSource(provider="local", rules=DATA / "billing.toml", prices=DATA / "prices.csv")
