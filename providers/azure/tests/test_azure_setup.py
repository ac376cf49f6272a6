"""`runvoy setup --provider azure`, the plugin boundary and the configuration."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest


def test_setup_dry_run_then_create_then_exists(new_section: Any) -> None:
    from runvoy_azure.provider import create_provider

    provider = create_provider(new_section())
    try:
        planned = provider.setup(dry_run=True)
        assert [s["action"] for s in planned] == ["would create"] * 4
        assert planned[0]["resource"].startswith("resource group rg-")
        assert (
            provider.setup(dry_run=False)
            and [s["action"] for s in provider.setup(dry_run=True)] == ["exists"] * 4
        )
    finally:
        provider.close()


def test_a_missing_sdk_names_the_extra_to_install() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'azure' or name.startswith('azure.'):\n"
        "            raise ImportError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from runvoy_core.errors import ProviderUnavailable\n"
        "from runvoy_core.plugins.manager import load_plugins\n"
        "spec = load_plugins().registry.get('azure')\n"
        "try:\n"
        "    spec.load_factory()\n"
        "except ProviderUnavailable as exc:\n"
        "    print(exc.hint)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "pip install 'runvoy[azure]'" in out


def test_config_validation() -> None:
    from pydantic import ValidationError
    from runvoy_azure.config import AzureConfig

    with pytest.raises(ValidationError, match="only for a custom arm_endpoint"):
        AzureConfig(credential="fake")
    with pytest.raises(ValidationError, match="table name"):
        AzureConfig(executions_table="bad-name")
    with pytest.raises(ValidationError, match="blob container name"):
        AzureConfig(logs_container="Bad_Name")
    config = AzureConfig(
        storage_connection_string="UseDevelopmentStorage=true", secret_values={"x": "hidden"}
    )
    assert "hidden" not in repr(config) and "UseDevelopmentStorage" not in repr(config)


def test_list_active_without_a_resource_group_is_empty(make_provider: Any) -> None:
    provider = make_provider(resource_group="rg-never-created")
    assert provider.compute.list_active() == []
    assert provider.compute.find("abc") is None


def test_missing_settings_are_config_errors_with_hints() -> None:
    from runvoy_azure.provider import create_provider

    from runvoy_core.errors import ConfigError

    provider = create_provider({})
    with pytest.raises(ConfigError, match="subscription_id"):
        provider.compute.find("abc")
    with pytest.raises(ConfigError, match="no storage configured"):
        provider.store.get("abc")
