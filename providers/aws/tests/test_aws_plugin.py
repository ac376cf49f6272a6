"""Packaging: the entry point registers the provider and imports no AWS SDK; config validation."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError


def test_the_plugin_and_config_modules_import_no_sdk() -> None:
    code = (
        "import sys, runvoy_aws.plugin, runvoy_aws.config;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 's3transfer')];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_hook_registers_the_aws_provider() -> None:
    from runvoy_aws import plugin

    from runvoy_core.plugins import ProviderRegistry

    registry = ProviderRegistry()
    plugin.runvoy_register_providers(registry)
    spec = registry.get("aws")
    assert spec is not None
    assert spec.install_hint() == "install it with: pip install 'runvoy[aws]'"
    assert {"image", "spot", "arm64", "secrets", "graceful_stop"} <= set(spec.capabilities)
    assert spec.load_config_model().__name__ == "AwsConfig"
    assert callable(spec.load_factory())


def test_the_entry_point_is_installed() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="runvoy")}
    assert names.get("aws") == "runvoy_aws.plugin"


def test_config_rejects_bad_values() -> None:
    from runvoy_aws.config import AwsConfig

    with pytest.raises(ValidationError, match="stop_timeout"):
        AwsConfig(stop_timeout=300)
    with pytest.raises(ValidationError, match="CloudWatch accepts only"):
        AwsConfig(log_retention_days=10)
    with pytest.raises(ValidationError, match="reserved"):
        AwsConfig(tags={"runvoy:x": "1"})
    with pytest.raises(ValidationError, match=r"unknown|Extra inputs"):
        AwsConfig.model_validate({"clustr": "x"})
    assert AwsConfig().image == "public.ecr.aws/docker/library/python:3.12-slim"


def test_a_missing_region_is_a_config_error(monkeypatch) -> None:
    from runvoy_aws.config import AwsConfig
    from runvoy_aws.provider import create_provider

    from runvoy_core.errors import ConfigError

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(ConfigError, match="no AWS region"):
        create_provider(AwsConfig(), None)


def test_a_missing_sdk_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "from runvoy_core.errors import ProviderUnavailable\n"
        "from runvoy_core.plugins import ProviderRegistry\n"
        "from runvoy_aws import plugin\n"
        "registry = ProviderRegistry(); plugin.runvoy_register_providers(registry)\n"
        "try:\n"
        "    registry.get('aws').load_factory()\n"
        "except ProviderUnavailable as exc:\n"
        "    print(exc.hint); sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "install it with: pip install 'runvoy[aws]'"
