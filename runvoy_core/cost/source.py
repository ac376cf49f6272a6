"""What a provider declares about money, through its spec (``ProviderSpec.pricing``): the sizes it accepts,
how it bills, the prices it ships, and — optionally — how ``runvoy cost refresh`` reads its price API.

The core keeps the calculator, the catalog format, dated catalogs and refresh; it knows no provider by name.
A third-party provider that declares a ``PriceSource`` gets per-run costs, estimates, budgets and reports like
a built-in one. Standard library only: ``runvoy cost estimate`` loads every provider's source.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from runvoy_core.cost.catalog import PriceRow
    from runvoy_core.plugins.manager import LoadedPlugins


@dataclass(frozen=True)
class PriceSource:
    provider: str
    rules: Traversable | Path
    """A TOML file: the billing rule's keys at the top level (service, default_region, minimum_seconds,
    rounding_step_seconds, meter_start, meter_stop, billed_size, free/min/max storage, architectures, spot,
    source), a ``[catalog]`` table (version, effective_date, retrieved_date) and ``[[sizes]]`` rows."""
    prices: Traversable | Path | None = None
    """The shipped price rows (the catalog's CSV columns); every row's provider must be ``provider``."""
    detects: Callable[[dict[str, Any]], bool] | None = None
    """Whether a saved response of a price API is this provider's (``cost refresh --from-file``)."""
    parse: Callable[[dict[str, Any], str], list[PriceRow]] | None = None
    """A price API response (and the retrieval date) -> catalog rows."""
    fetch: Callable[[list[str]], list[dict[str, Any]]] | None = None
    """Regions -> the price API's responses (network; ``cost refresh`` without --from-file)."""


class PriceSourceError(Exception):
    """A provider's declared price source cannot be loaded or read."""


def load_price_sources(plugins: LoadedPlugins | None = None) -> dict[str, PriceSource]:
    """Every registered provider's price source, by provider name (providers without one are left out; one
    that fails to load is left out too, and ``runvoy providers`` still lists the provider)."""
    if plugins is None:
        return dict(_installed())
    return _from(plugins)


@functools.cache
def _installed() -> tuple[tuple[str, PriceSource], ...]:
    from runvoy_core.plugins.manager import get_plugins

    return tuple(_from(get_plugins()).items())


def _from(plugins: LoadedPlugins) -> dict[str, PriceSource]:
    from runvoy_core.plugins.registry import load_import_string

    found: dict[str, PriceSource] = {}
    for spec in plugins.registry.specs():
        if spec.pricing is None:
            continue
        try:
            source = load_import_string(spec.pricing, spec)
        except Exception:  # a broken price source must not break the other providers' costs
            continue
        if isinstance(source, PriceSource) and source.provider == spec.name:
            found[spec.name] = source
    return found


def clear_cache() -> None:
    """Forget the installed providers' sources (tests that install a plugin)."""
    _installed.cache_clear()
