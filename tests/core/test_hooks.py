"""Every hookspec is documented in docs/providers.md, every documented hook exists, and every hook has a test
here named ``test_hook_<name>`` that drives it through a plugin loaded by the real loader."""

from __future__ import annotations

import re
import sys
import textwrap
import types
from decimal import Decimal
from pathlib import Path

from runvoy_core.api import Runvoy
from runvoy_core.models import Cost, Execution, ExecutionRequest, Status, new_execution_id
from runvoy_core.plugins import hookspecs
from runvoy_core.plugins.manager import load_plugins

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def _hookspec_names() -> set[str]:
    return {name for name, value in vars(hookspecs).items() if name.startswith("runvoy_") and callable(value)}


def _documented_hooks() -> set[str]:
    text = DOCS.read_text()
    section = text.split("### Hooks", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(runvoy_\w+)\(", section, flags=re.MULTILINE))


def _plugin(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(textwrap.dedent(source), module.__dict__)
    return module


def test_every_hookspec_is_documented_and_every_documented_hook_exists() -> None:
    assert _documented_hooks() == _hookspec_names()


def test_every_hookspec_has_a_test() -> None:
    tests = {name for name in vars(sys.modules[__name__]) if name.startswith("test_hook_")}
    assert {f"test_hook_{name}" for name in _hookspec_names()} <= tests


def test_hook_runvoy_register_providers() -> None:
    plugin = _plugin(
        "acme_hook_plugin",
        """
from runvoy_core.plugins import ProviderSpec, hookimpl
from runvoy_core.ports.capabilities import Capability
@hookimpl
def runvoy_register_providers(registry):
    registry.register(ProviderSpec(name="acme", factory="acme.provider:create", capabilities={Capability.IMAGE}))
""",
    )
    loaded = load_plugins(extra_plugins=[("acme", plugin)])
    spec = loaded.registry.get("acme")
    assert spec is not None and spec.plugin == "acme" and "image" in spec.capabilities


def test_hook_runvoy_execution_finished(runvoy_home: Path) -> None:
    plugin = _plugin(
        "finished_hook_plugin",
        """
from runvoy_core.plugins import hookimpl
SEEN = []
@hookimpl
def runvoy_execution_finished(execution):
    SEEN.append(execution)
""",
    )
    rv = Runvoy()
    rv._plugins = load_plugins(extra_plugins=[("finished", plugin)])
    ex = rv.run("exit 3")
    (seen,) = plugin.SEEN
    assert seen["id"] == ex.id and seen["status"] == "FAILED" and seen["exit_code"] == 3


def test_hook_runvoy_budget_alert(runvoy_home: Path) -> None:
    from runvoy_core.cost.budgets import Budget, BudgetStore, check_budgets
    from runvoy_core.providers.local.store import LocalStore

    plugin = _plugin(
        "alert_hook_plugin",
        """
from runvoy_core.plugins import hookimpl
ALERTS = []
@hookimpl
def runvoy_budget_alert(alert):
    ALERTS.append(alert)
""",
    )
    loaded = load_plugins(extra_plugins=[("alerts", plugin)])
    BudgetStore(runvoy_home).put(Budget(name="monthly", amount=Decimal(10), alert_at=[50]))
    store = LocalStore(runvoy_home)
    store.create(
        Execution(
            id=new_execution_id(),
            provider="aws",
            request=ExecutionRequest(command="true"),
            status=Status.SUCCEEDED,
            user="alice",
            cost=Cost(provider="aws", total=Decimal("6.00")),
        )
    )
    request = ExecutionRequest.model_validate(
        {"command": "make", "resources": {"cpu": 1, "memory": "2GiB"}, "timeout": "1h"}
    )
    check_budgets(
        request,
        provider="aws",
        region=None,
        user="alice",
        home=runvoy_home,
        hooks=loaded.hooks,
        notify_url=None,
        store=store,
        execution_id="e1",
    )
    (alert,) = plugin.ALERTS
    assert alert["budget"] == "monthly" and alert["threshold_percent"] == 50


def test_hook_runvoy_backends(runvoy_home: Path) -> None:
    """A plugin's factory for a scheme is called with the server's URL, the token and the settings, and its
    backend answers (tests/core/test_facade.py reaches one through `Runvoy(server=...)` and every command)."""
    from runvoy_core.config import load_settings
    from runvoy_core.engine import LocalBackend

    plugin = _plugin(
        "backends_hook_plugin",
        """
from runvoy_core.engine import LocalBackend
from runvoy_core.plugins import hookimpl
CALLS = []
@hookimpl
def runvoy_backends():
    def factory(url, *, token, settings, provider, config):
        CALLS.append((url, token, provider, config))
        return LocalBackend(provider, settings=settings, **config)
    return {"http": factory}
""",
    )
    loaded = load_plugins(extra_plugins=[("backends", plugin)])
    others = [p for p in loaded.hooks.get_plugins() if p is not plugin]
    (answer,) = loaded.hooks.subset_hook_caller("runvoy_backends", remove_plugins=others)()
    backend = answer["http"](
        "http://127.0.0.1:9", token="rvk_x", settings=load_settings(), provider=None, config={}
    )
    assert plugin.CALLS == [("http://127.0.0.1:9", "rvk_x", None, {})]
    assert isinstance(backend, LocalBackend) and backend.run("exit 2").exit_code == 2
