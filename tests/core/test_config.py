from __future__ import annotations

from pathlib import Path

import pytest

from runvoy_core.config import load_settings
from runvoy_core.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml")
    assert settings.provider == "local"


def test_profile_and_environment_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(
        tmp_path / "c.toml",
        """
provider = "local"
lock_lease = "45s"
[providers.aws]
region = "eu-west-1"
[profiles.ci]
provider = "aws"
[profiles.ci.providers.aws]
cluster = "ci"
""",
    )
    settings = load_settings(cfg, profile="ci")
    assert settings.provider == "aws"
    assert settings.lock_lease == 45
    assert settings.providers["aws"] == {"region": "eu-west-1", "cluster": "ci"}
    monkeypatch.setenv("RUNVOY_PROVIDER", "gcp")
    assert load_settings(cfg, profile="ci").provider == "gcp"
    assert load_settings(cfg, profile="ci", provider="azure").provider == "azure"


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.toml", "provider = [unclosed")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(cfg) in info.value.message and "TOML" in info.value.message


def test_unknown_key_and_bad_value_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="provder: unknown setting"):
        load_settings(write(tmp_path / "a.toml", 'provder = "aws"\n'))
    with pytest.raises(ConfigError, match="lock_lease"):
        load_settings(write(tmp_path / "b.toml", 'lock_lease = "forever"\n'))


def test_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no profile 'prod'"):
        load_settings(write(tmp_path / "c.toml", "[profiles.dev]\n"), profile="prod")


def test_environment_nesting_json_and_foreign_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNVOY_PROVIDERS__AWS__REGION", "us-west-2")
    monkeypatch.setenv("RUNVOY_PROVIDERS__AWS__SUBNETS", '["subnet-1", "subnet-2"]')
    monkeypatch.setenv("RUNVOY_NOTIFY__WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("RUNVOY_EXECUTION_ID", "abc")  # set inside tasks: not a setting, must be ignored
    settings = load_settings(tmp_path / "absent.toml")
    assert settings.providers["aws"] == {"region": "us-west-2", "subnets": ["subnet-1", "subnet-2"]}
    assert settings.notify.webhook_url == "http://127.0.0.1:9/hook"
    monkeypatch.setenv("RUNVOY_LOG_LEVEL", "loud")
    with pytest.raises(ConfigError, match="log_level"):
        load_settings(tmp_path / "absent.toml")
