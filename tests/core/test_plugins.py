"""The plugin loader: discovery, isolation of broken plugins, duplicates, allow/block lists, API version."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest

from runvoy_core.errors import PluginError
from runvoy_core.plugins import ProviderRegistry, ProviderSpec
from runvoy_core.plugins.manager import load_plugins


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(textwrap.dedent(source), module.__dict__)
    return module


GOOD = """
from runvoy_core.plugins import ProviderSpec, hookimpl
@hookimpl
def runvoy_register_providers(registry):
    registry.register(ProviderSpec(name="{name}", factory="somewhere.mod:factory"))
"""


def test_local_provider_registers_through_the_hook() -> None:
    loaded = load_plugins()
    spec = loaded.registry.get("local")
    assert spec is not None
    assert spec.factory == "runvoy_core.providers.local.provider:create_provider"


def test_duplicate_provider_names_both_plugins() -> None:
    registry = ProviderRegistry()
    registry.current_plugin = "first-plugin"
    registry.register(ProviderSpec(name="dup", factory="a.b:c"))
    registry.current_plugin = "second-plugin"
    with pytest.raises(PluginError) as info:
        registry.register(ProviderSpec(name="dup", factory="x.y:z"))
    assert "first-plugin" in info.value.message and "second-plugin" in info.value.message


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="import string"):
        ProviderSpec(name="ok", factory="not an import string")
    with pytest.raises(ValueError, match="lowercase"):
        ProviderSpec(name="Bad Name", factory="a.b:c")


def test_broken_plugin_is_reported_not_fatal() -> None:
    broken = _module(
        "broken_plugin",
        """
from runvoy_core.plugins import hookimpl
@hookimpl
def runvoy_register_providers(registry):
    raise RuntimeError("boom")
""",
    )
    good = _module("good_plugin", GOOD.format(name="good"))
    loaded = load_plugins(extra_plugins=[("broken", broken), ("good", good)])
    assert "good" in loaded.registry
    assert any(f.plugin == "broken" and "boom" in f.error for f in loaded.failures)


def test_plugin_api_version_mismatch_is_reported() -> None:
    future = _module("future_plugin", "RUNVOY_PLUGIN_API = 2\n" + GOOD.format(name="future"))
    loaded = load_plugins(extra_plugins=[("future", future)])
    assert "future" not in loaded.registry
    assert any("API version 2" in f.error for f in loaded.failures)


def test_block_and_allow_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNVOY_PLUGINS_BLOCK", "aws,gcp")
    loaded = load_plugins()
    assert "aws" not in loaded.registry and "gcp" not in loaded.registry
    assert {"aws", "gcp"} <= set(loaded.skipped)
    monkeypatch.delenv("RUNVOY_PLUGINS_BLOCK")
    monkeypatch.setenv("RUNVOY_PLUGINS_ALLOW", "local")
    loaded = load_plugins()
    assert loaded.registry.names() == ["local"]


def test_unimportable_entry_point_is_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution whose entry-point module raises on import shows up as a failure."""
    dist = tmp_path / "fakeplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[runvoy]\nfake = fake_runvoy_plugin\n")
    (tmp_path / "fake_runvoy_plugin.py").write_text("raise ImportError('needs a missing SDK')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_plugins()
    failure = next(f for f in loaded.failures if f.plugin == "fake")
    assert failure.distribution == "fakeplugin" and "missing SDK" in failure.error
    assert "local" in loaded.registry
    sys.modules.pop("fake_runvoy_plugin", None)
