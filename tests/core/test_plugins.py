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
    future = _module("future_plugin", "RUNVOY_PLUGIN_API = 3\n" + GOOD.format(name="future"))
    loaded = load_plugins(extra_plugins=[("future", future)])
    assert "future" not in loaded.registry
    assert any("API version 3" in f.error for f in loaded.failures)


def test_a_plugin_of_the_previous_api_loads_with_a_notice() -> None:
    older = _module("older_plugin", "RUNVOY_PLUGIN_API = 1\n" + GOOD.format(name="older"))
    loaded = load_plugins(extra_plugins=[("older", older)])
    assert "older" in loaded.registry and not loaded.failures
    assert any("plugin API 1" in notice and "ProviderSpec" in notice for notice in loaded.notices)


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


def test_a_hook_with_a_wrong_signature_is_isolated() -> None:
    """pluggy's PluginValidationError (an argument the hookspec does not have) is that plugin's failure."""
    wrong = _module(
        "wrong_signature_plugin",
        """
from runvoy_core.plugins import hookimpl
@hookimpl
def runvoy_register_providers(registry, something_else):
    pass
""",
    )
    good = _module("good_plugin2", GOOD.format(name="good2"))
    loaded = load_plugins(extra_plugins=[("wrong", wrong), ("good2", good)])
    assert "good2" in loaded.registry and "local" in loaded.registry
    failure = next(f for f in loaded.failures if f.plugin == "wrong")
    assert "something_else" in failure.error
    assert wrong not in loaded.hooks.get_plugins()


def test_a_misspelled_hook_is_that_plugins_load_error() -> None:
    misspelled = _module(
        "misspelled_plugin",
        """
from runvoy_core.plugins import ProviderSpec, hookimpl
@hookimpl
def runvoy_register_provider(registry):
    registry.register(ProviderSpec(name="never", factory="a.b:c"))
""",
    )
    loaded = load_plugins(extra_plugins=[("misspelled", misspelled)])
    failure = next(f for f in loaded.failures if f.plugin == "misspelled")
    assert "runvoy_register_provider" in failure.error and "runvoy_register_providers" in failure.error
    assert "never" not in loaded.registry and "local" in loaded.registry
    loaded.hooks.check_pending()  # nothing unknown is left registered


def test_an_optional_hook_of_a_newer_runvoy_is_accepted() -> None:
    optional = _module(
        "optional_plugin",
        """
from runvoy_core.plugins import ProviderSpec, hookimpl
@hookimpl(optionalhook=True)
def runvoy_some_future_hook(thing):
    pass
"""
        + GOOD.format(name="optional"),
    )
    loaded = load_plugins(extra_plugins=[("optional", optional)])
    assert "optional" in loaded.registry
    assert not [f for f in loaded.failures if f.plugin == "optional"]


def test_specname_is_honoured() -> None:
    """A hook implementation named otherwise, bound to the hookspec with ``specname``."""
    named = _module(
        "specname_plugin",
        """
from runvoy_core.plugins import ProviderSpec, hookimpl
@hookimpl(specname="runvoy_register_providers")
def add_my_providers(registry):
    registry.register(ProviderSpec(name="named", factory="a.b:c"))
""",
    )
    loaded = load_plugins(extra_plugins=[("named", named)])
    assert "named" in loaded.registry
    assert loaded.registry.get("named").plugin == "named"  # type: ignore[union-attr]


def test_each_plugin_registers_only_once() -> None:
    """The provider hook of one plugin is not called again when the next plugin loads."""
    counted = _module(
        "counting_plugin",
        """
from runvoy_core.plugins import ProviderSpec, hookimpl
CALLS = []
@hookimpl
def runvoy_register_providers(registry):
    CALLS.append(1)
    registry.register(ProviderSpec(name="counted", factory="a.b:c"))
""",
    )
    later = _module("later_plugin", GOOD.format(name="later"))
    loaded = load_plugins(extra_plugins=[("counted", counted), ("later", later)])
    assert counted.CALLS == [1]
    assert {"counted", "later"} <= set(loaded.registry.names()) and not loaded.failures


def test_a_plugin_failing_halfway_leaves_nothing_registered() -> None:
    halfway = _module(
        "halfway_plugin",
        """
from runvoy_core.plugins import ProviderSpec, hookimpl
@hookimpl
def runvoy_register_providers(registry):
    registry.register(ProviderSpec(name="first-half", factory="a.b:c"))
    registry.register({"name": "Not Valid", "factory": "a.b:c"})
""",
    )
    loaded = load_plugins(extra_plugins=[("halfway", halfway)])
    assert "first-half" not in loaded.registry
    assert any(f.plugin == "halfway" and "lowercase" in f.error for f in loaded.failures)


def _installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    dist = tmp_path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[runvoy]\n{name} = {name}_module\n")
    (tmp_path / f"{name}_module.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))


def test_a_broken_installed_plugin_never_breaks_a_local_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end through the real CLI in a subprocess: the run works, `runvoy providers` names the plugin."""
    import json
    import subprocess

    _installed_plugin(
        tmp_path,
        monkeypatch,
        "badsig",
        """
from runvoy_core.plugins import hookimpl
@hookimpl
def runvoy_register_providers(registry, unexpected_argument):
    pass
""",
    )
    monkeypatch.delenv("RUNVOY_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    cli = [str(Path(sys.executable).parent / "runvoy")]
    run = subprocess.run([*cli, "run", "echo still-works"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "still-works"
    listing = subprocess.run([*cli, "providers", "--json"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    failures = json.loads(listing.stdout)["failures"]
    assert any(f["plugin"] == "badsig" and "unexpected_argument" in f["error"] for f in failures)
    sys.modules.pop("badsig_module", None)
