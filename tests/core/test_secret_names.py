"""One rule turns a secret's own name into the variable the command sees, on every provider."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_core.errors import UsageError
from runvoy_core.secrets import secret_env_name, secret_env_names

ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@pytest.mark.parametrize(
    ("own", "env"),
    [
        ("db-password", "DB_PASSWORD"),
        ("db_password", "DB_PASSWORD"),
        ("DB.Password", "DB_PASSWORD"),
        ("2fa-seed", "_2FA_SEED"),
        ("token", "TOKEN"),
    ],
)
def test_examples_from_the_docs(own: str, env: str) -> None:
    assert secret_env_name(own) == env


@pytest.mark.parametrize("own", ["runvoy_fence", "RUNVOY-LOCK", "Runvoy.Execution.Id"])
def test_runvoy_names_are_reserved(own: str) -> None:
    with pytest.raises(UsageError, match="RUNVOY_"):
        secret_env_name(own)


def test_two_secrets_on_one_variable_are_refused() -> None:
    with pytest.raises(UsageError, match=r"both set \$DB_PASSWORD"):
        secret_env_names([("/prod/db-password", "db-password"), ("/dev/db_password", "db_password")])
    assert secret_env_names([("/a/x", "x"), ("/a/x", "x")]) == {"X": "/a/x"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_name_gives_a_valid_variable_or_a_clean_error(own: str) -> None:
    try:
        env = secret_env_name(own)
    except UsageError as exc:
        assert exc.hint
        return
    assert ENV.match(env), env
    assert not env.startswith("RUNVOY_")
    assert secret_env_name(env) == env  # a variable name is its own secret name
