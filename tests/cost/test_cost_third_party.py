"""A third-party provider declares its sizes, billing rule and prices through its spec, and gets estimates,
per-run costs (and equivalents), size validation and budgets like a built-in one: the core names no cloud."""

from __future__ import annotations

import textwrap
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from runvoy_core.cost import source as price_source
from runvoy_core.cost.rules import rule_book
from runvoy_core.errors import ValidationFailed
from runvoy_core.models import Resources
from runvoy_core.plugins import manager

RULES = """
service = "Acme Batch"
default_region = "moon-1"
minimum_seconds = "30"
rounding_step_seconds = "10"
meter_start = "job start"
meter_stop = "job stop"
billed_size = "requested size"
free_storage_gib = 0
storage_min_gib = 0
storage_max_gib = 0
architectures = ["x86_64"]
spot = false
source = "https://acme.example/pricing"

[catalog]
version = "2026.11.1"
effective_date = "2026-11-01"
retrieved_date = "2026-11-01"

[[sizes]]
cpu = "1"
memory_mib = [1024, 2048]
[[sizes]]
cpu = "2"
memory_mib = [4096]
"""
PRICES = """provider,service,region,os,architecture,capacity,dimension,unit,price,currency,effective_date,retrieved_date,source
acme,Acme Batch,moon-1,linux,x86_64,on-demand,vcpu,vCPU-hour,0.036,USD,2026-11-01,2026-11-01,acme
acme,Acme Batch,moon-1,linux,x86_64,on-demand,memory,GiB-hour,0.0036,USD,2026-11-01,2026-11-01,acme
"""


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "billing.toml").write_text(RULES)
    (tmp_path / "prices.csv").write_text(PRICES)
    pricing = types.ModuleType("acme_pricing")
    exec(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from runvoy_core.cost.source import PriceSource
            PRICING = PriceSource(provider="acme", rules=Path({str(tmp_path / "billing.toml")!r}),
                                  prices=Path({str(tmp_path / "prices.csv")!r}))
            """
        ),
        pricing.__dict__,
    )
    monkeypatch.setitem(__import__("sys").modules, "acme_pricing", pricing)
    plugin = types.ModuleType("acme_plugin")
    exec(
        textwrap.dedent(
            """
            from runvoy_core.plugins import ProviderSpec, hookimpl
            @hookimpl
            def runvoy_register_providers(registry):
                registry.register(ProviderSpec(name="acme", factory="acme.provider:create",
                                               pricing="acme_pricing:PRICING"))
            """
        ),
        plugin.__dict__,
    )
    loaded = manager.load_plugins(extra_plugins=[("acme", plugin)])
    assert not loaded.failures
    monkeypatch.setattr(manager, "_CACHE", loaded)
    _forget_prices()
    yield
    _forget_prices()


def _forget_prices() -> None:
    from runvoy_core.cost import catalog

    price_source.clear_cache()
    rule_book.cache_clear()
    catalog._SHIPPED.clear()


def test_a_third_party_provider_gets_estimates_from_its_declared_prices(acme: None) -> None:
    from runvoy_core.cost.calculator import estimate

    cost = estimate("acme", Resources.model_validate(dict(cpu=1, memory="2GiB")), 95)
    # billed 100 s (10 s steps): 1 vCPU * 0.036/h + 2 GiB * 0.0036/h
    expected = (Decimal("0.036") + 2 * Decimal("0.0036")) * 100 / 3600
    assert abs(cost.total - expected) < Decimal("0.0000001")
    assert cost.billed_seconds == 100 and cost.region == "moon-1"


def test_its_sizes_are_validated_and_listed(acme: None) -> None:
    from runvoy_core.cost.calculator import estimate

    with pytest.raises(
        ValidationFailed, match="acme cannot pair 1 vCPU with 4GiB; valid sizes: 1 vCPU: 1GiB/2GiB"
    ):
        estimate("acme", Resources.model_validate(dict(cpu=1, memory="4GiB")), 60)


def test_a_local_run_shows_what_it_would_have_cost_there(acme: None) -> None:
    from runvoy_core.api import Runvoy

    ex = Runvoy().run("true", cpu=1, memory="2GiB")
    assert ex.cost is not None and "acme" in ex.cost.equivalents


def test_cost_estimate_lists_it_among_all_providers(acme: None) -> None:
    import json

    from click.testing import CliRunner

    from runvoy_cli.main import cli

    result = CliRunner().invoke(cli, ["cost", "estimate", "--cpu", "1", "--memory", "2GiB", "--json"])
    assert result.exit_code == 0, result.output
    providers = {row["provider"] for row in json.loads(result.stdout)["estimates"]}
    assert "acme" in providers
