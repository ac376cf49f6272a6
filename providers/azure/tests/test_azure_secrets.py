"""Secrets from Key Vault (the real azure-keyvault-secrets client, over TLS to a fake vault) or from the
config, passed as secure environment values and never written anywhere else."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from runvoy_azure_testfakes.helpers import read_all, spec, wait_ended

from runvoy_core.errors import NotFound, UsageError
from runvoy_core.models import Status
from runvoy_core.testing.sinks import RecordingSink as Sink


@pytest.fixture
def vault_client(make_client: Any, key_vault: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(key_vault.cert))  # trust the fake vault's certificate
    key_vault.secrets["db-password"] = "kv-s3cr3t"
    return make_client(key_vault_url=key_vault.url, key_vault_verify_challenge=False)


def test_a_key_vault_secret_reaches_the_command_as_a_secure_value(vault_client: Any, fake_aci: Any) -> None:
    sink = Sink()
    digest = hashlib.sha256(b"kv-s3cr3t").hexdigest()
    # the command compares a digest, so that the value itself appears in no command line
    command = f'[ "$(printf %s "$DB_PASSWORD" | sha256sum | cut -d" " -f1)" = "{digest}" ] && echo matched'
    execution = vault_client.run(command, secrets=["db-password"], log_sink=sink)
    assert execution.status is Status.SUCCEEDED, execution.reason
    assert sink.lines() == ["matched"]
    # the value is in no record, no event and no log line
    stored = vault_client.get(execution.id)
    assert "kv-s3cr3t" not in stored.model_dump_json()
    assert all("kv-s3cr3t" not in e.model_dump_json() for e in vault_client.events(execution.id))
    assert stored.request.secrets == ["db-password"]


def test_a_missing_key_vault_secret_fails_the_start_clearly(vault_client: Any, key_vault: Any) -> None:
    with pytest.raises(NotFound) as caught:
        vault_client.run("true", secrets=["no-such-secret"])
    assert "no-such-secret" in caught.value.message and caught.value.hint
    assert "no-such-secret" in key_vault.reads


def test_config_secret_values_and_name_clashes(make_provider: Any) -> None:
    provider = make_provider(secret_values={"app/token": "t0ken", "other/token": "x"})
    ref = provider.compute.start(
        spec("dddd00000001", '[ "$TOKEN" = "t0ken" ] && echo ok', secrets=["app/token"]), "dddd00000001"
    )
    assert wait_ended(provider, ref).exit_code == 0 and read_all(provider, ref) == ["ok"]
    with pytest.raises(UsageError, match="both become"):
        provider.compute.start(
            spec("dddd00000002", "true", secrets=["app/token", "other/token"]), "dddd00000002"
        )


def test_secrets_without_a_vault_or_values_are_a_config_error(make_provider: Any) -> None:
    from runvoy_core.errors import ConfigError

    provider = make_provider()
    with pytest.raises(ConfigError, match="key_vault_url"):
        provider.compute.start(spec("dddd00000003", "true", secrets=["x"]), "dddd00000003")
