"""The packaging suite: a provider's entry-point module and config model import no cloud SDK (checked in
a fresh interpreter), and the plugin registers a valid ProviderSpec through ``load_plugins()``.

Set the class attributes::

    class TestAwsPackaging(PackagingConformance):
        provider_name = "aws"
        entry_point_module = "runvoy_aws.plugin"
        forbidden_modules = ["boto3", "botocore"]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, ClassVar

from runvoy_core.plugins.manager import load_plugins
from runvoy_core.plugins.registry import ProviderSpec
from runvoy_core.ports.provider import Capability

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name.partition(":")[0])
print(json.dumps(sorted(sys.modules)))
"""


def imported_modules(*targets: str) -> list[str]:
    """The modules a fresh interpreter has loaded after importing ``targets`` ("pkg.mod" or "pkg.mod:attr")."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *targets], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"importing {targets} failed:\n{done.stderr}"
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


def offending(modules: list[str], forbidden: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))


class PackagingConformance:
    provider_name: ClassVar[str] = ""
    entry_point_module: ClassVar[str] = ""
    forbidden_modules: ClassVar[list[str]] = ["boto3", "botocore", "google", "azure"]
    minimal_config: ClassVar[dict[str, Any]] = {}
    """A configuration the config model accepts (empty: every field has a default)."""

    def _spec(self) -> ProviderSpec:
        loaded = load_plugins()
        failures = [f for f in loaded.failures if f.plugin == self.provider_name]
        assert not failures, f"the plugin failed to load: {failures}"
        spec = loaded.registry.get(self.provider_name)
        assert spec is not None, (
            f"no provider {self.provider_name!r} registered (have {loaded.registry.names()})"
        )
        return spec

    def test_entry_point_module_imports_no_sdk(self) -> None:
        assert self.entry_point_module, "set entry_point_module"
        modules = imported_modules(self.entry_point_module)
        assert self.entry_point_module in modules
        assert offending(modules, self.forbidden_modules) == []

    def test_discovering_the_plugin_imports_no_sdk(self) -> None:
        env = {**os.environ, "RUNVOY_PLUGINS_ALLOW": self.provider_name}
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import json, sys; from runvoy_core.plugins.manager import load_plugins; r = load_plugins(); "
                "assert not r.failures, r.failures; print(json.dumps(sorted(sys.modules)))",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        modules = json.loads(done.stdout.strip().splitlines()[-1])
        assert offending(modules, self.forbidden_modules) == []

    def test_plugin_registers_a_valid_provider_spec(self) -> None:
        spec = self._spec()
        assert spec.name == self.provider_name
        module, _, attr = spec.factory.partition(":")
        assert module and attr
        known = {c.value for c in Capability}
        assert set(spec.capabilities) <= known, f"unknown capabilities: {set(spec.capabilities) - known}"

    def test_config_model_validates_and_imports_no_sdk(self) -> None:
        spec = self._spec()
        if spec.config_model is None:
            return
        modules = imported_modules(spec.config_model)
        assert offending(modules, self.forbidden_modules) == []
        model: Any = spec.load_config_model()
        assert isinstance(model, type)
        # a pydantic model or a runvoy Record: anything with the model_validate classmethod
        validate: Any = getattr(model, "model_validate", None)
        assert callable(validate)
        validate(self.minimal_config)

    def test_credential_check_is_typed_and_imports_no_sdk(self) -> None:
        """``ProviderSpec.credentials`` (``runvoy init``, decision 2111): a ``CredentialCheck`` whose module
        imports no SDK until ``check`` runs, and whose ``region_setting`` is a key of the config model."""
        from runvoy_core.ports.optional import CredentialCheck

        spec = self._spec()
        if spec.credentials is None:
            return
        modules = imported_modules(spec.credentials)
        assert offending(modules, self.forbidden_modules) == []
        check = spec.load_credential_check()
        assert isinstance(check, CredentialCheck), f"{spec.credentials} is not a CredentialCheck"
        model: Any = spec.load_config_model()
        fields: Any = getattr(model, "model_fields", None) or getattr(model, "__struct_fields__", ())
        if model is not None:
            assert check.region_setting in fields, f"region_setting {check.region_setting!r} is no config key"
