"""The local provider's billing rule and its zero prices (runs on this machine cost nothing; a finished run
shows what it would have cost on each cloud provider that declares prices)."""

from __future__ import annotations

from importlib.resources import files

from runvoy_core.cost.source import PriceSource

PRICING = PriceSource(
    provider="local",
    rules=files("runvoy_core.providers.local") / "data" / "billing.toml",
    prices=files("runvoy_core.providers.local") / "data" / "prices.csv",
)
