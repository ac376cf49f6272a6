"""Secret names → Secret Manager references (never values)."""

from __future__ import annotations

import pytest
from runvoy_gcp.secrets import parse_secret, parse_secrets

from runvoy_core.errors import ValidationFailed


@pytest.mark.parametrize(
    ("name", "env", "secret", "version"),
    [
        ("db-password", "DB_PASSWORD", "db-password", "latest"),
        ("db-password:3", "DB_PASSWORD", "db-password", "3"),
        ("api_key:latest", "API_KEY", "api_key", "latest"),
        ("projects/other/secrets/token", "TOKEN", "projects/other/secrets/token", "latest"),
        ("projects/other/secrets/token:7", "TOKEN", "projects/other/secrets/token", "7"),
        ("9lives", "_9LIVES", "9lives", "latest"),
    ],
)
def test_parse(name: str, env: str, secret: str, version: str) -> None:
    ref = parse_secret(name)
    assert (ref.env_name, ref.secret, ref.version) == (env, secret, version)
    assert ref.resource_name("p").endswith(f"secrets/{ref.secret_id}")


@pytest.mark.parametrize("name", ["a:b", "a:0", "bad.name", "projects/p/x/y", "a/b"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_secret(name)


def test_two_secrets_for_one_variable_are_refused() -> None:
    with pytest.raises(ValidationFailed):
        parse_secrets(["db-password", "db_password"])
    assert [r.env_name for r in parse_secrets(["b", "a", "a"])] == ["A", "B"]
