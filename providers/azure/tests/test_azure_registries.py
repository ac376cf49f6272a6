"""Private registries on ACI (decision 0813): imageRegistryCredentials with a password from Key Vault (the
real azure-keyvault-secrets client against the fake vault) or a managed identity for ACR, checked by the ARM
fake against ARM's rules; registry_login for ACR hosts; the config key's form."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from runvoy_azure.config import AzureConfig
from runvoy_azure_testfakes.helpers import spec, wait_ended

from runvoy_core.ports.optional import RegistryLogin

PASSWORD = "acr-pa55word-not-real-0123456789"
IDENTITY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ids/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/runvoy-pull"
)


@pytest.fixture
def vault_provider(make_provider: Any, key_vault: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(key_vault.cert))  # trust the fake vault's certificate
    key_vault.secrets["acr-password"] = PASSWORD
    return make_provider(
        key_vault_url=key_vault.url,
        key_vault_verify_challenge=False,
        registry_credentials={
            "acme.azurecr.io": {"username": "acme-pull", "password_secret": "acr-password"},
            "team.azurecr.io": {"identity": IDENTITY},
        },
    )


def test_a_private_image_is_pulled_with_the_password_from_key_vault(
    vault_provider: Any, fake_aci: Any, key_vault: Any
) -> None:
    ref = vault_provider.compute.start(
        spec("regz00000001", "true", image="acme.azurecr.io/tools/app:1"), "regz00000001"
    )
    assert wait_ended(vault_provider, ref).exit_code == 0
    sent = fake_aci.group(ref.split("/")[-1]).body
    assert sent["properties"]["imageRegistryCredentials"] == [
        {"server": "acme.azurecr.io", "username": "acme-pull", "password": PASSWORD}
    ]
    assert "acr-password" in key_vault.reads
    # ARM never hands the password back, and the task's state carries none of it
    read = vault_provider.clients.aci.container_groups.get(
        vault_provider.config.resource_group, ref.split("/")[-1]
    )
    assert PASSWORD not in json.dumps(read.as_dict()) and PASSWORD not in str(
        vault_provider.compute.describe(ref)
    )


def test_a_public_image_has_no_registry_credentials(vault_provider: Any, fake_aci: Any) -> None:
    ref = vault_provider.compute.start(spec("regz00000002", "true", image="python:3.12-slim"), "regz00000002")
    assert wait_ended(vault_provider, ref).exit_code == 0
    properties = fake_aci.group(ref.split("/")[-1]).body["properties"]
    assert "imageRegistryCredentials" not in properties
    assert "identity" not in fake_aci.group(ref.split("/")[-1]).body


def test_an_acr_image_is_pulled_with_the_group_s_managed_identity(vault_provider: Any, fake_aci: Any) -> None:
    ref = vault_provider.compute.start(
        spec("regz00000003", "true", image="team.azurecr.io/job:2"), "regz00000003"
    )
    assert wait_ended(vault_provider, ref).exit_code == 0
    sent = fake_aci.group(ref.split("/")[-1]).body
    assert sent["properties"]["imageRegistryCredentials"] == [
        {"server": "team.azurecr.io", "identity": IDENTITY}
    ]
    assert sent["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {IDENTITY: {}}}


def test_a_docker_hub_login_from_secret_values_without_a_vault(make_provider: Any, fake_aci: Any) -> None:
    provider = make_provider(
        secret_values={"hub-token": "dckr_pat_not-real"},
        registry_credentials={"docker.io": {"username": "octo", "password_secret": "hub-token"}},
    )
    ref = provider.compute.start(spec("regz00000004", "true", image="octo/private:1"), "regz00000004")
    assert wait_ended(provider, ref).exit_code == 0
    assert fake_aci.group(ref.split("/")[-1]).body["properties"]["imageRegistryCredentials"] == [
        {"server": "docker.io", "username": "octo", "password": "dckr_pat_not-real"}
    ]


def test_registry_login_reads_the_acr_password_and_never_logs_it(
    vault_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(vault_provider, RegistryLogin)
    caplog.set_level(logging.DEBUG, logger="runvoy")
    with structlog.testing.capture_logs() as logged:
        assert vault_provider.registry_login("acme.azurecr.io") == ("acme-pull", PASSWORD)
        # a managed identity has no secret to hand to the check; other hosts are not Azure's
        assert vault_provider.registry_login("team.azurecr.io") is None
        assert vault_provider.registry_login("ghcr.io") is None
        assert vault_provider.registry_login("other.azurecr.io") is None
    assert PASSWORD not in repr(logged) + caplog.text


def test_a_missing_password_secret_fails_the_start_before_any_group(
    make_provider: Any, key_vault: Any, fake_aci: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runvoy_core.errors import NotFound

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(key_vault.cert))
    provider = make_provider(
        key_vault_url=key_vault.url,
        key_vault_verify_challenge=False,
        registry_credentials={"ghcr.io": {"username": "u", "password_secret": "no-such-login"}},
    )
    with pytest.raises(NotFound, match="no-such-login"):
        provider.compute.start(spec("regz00000005", "true", image="ghcr.io/o/app:1"), "regz00000005")
    assert fake_aci.count("PUT", "regz00000005") == 0


def toml_string(text: str) -> str:
    # a TOML basic string: JSON's \\uD800 surrogate pairs are not TOML
    return json.dumps(text, ensure_ascii=False)


# -- the config key ----------------------------------------------------------------------------------------

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
HOSTS = st.one_of(
    st.sampled_from(["docker.io", "ghcr.io", "quay.io", "registry.example.com:5000", "acme.azurecr.io"]),
    st.builds(lambda a, b: f"{a}.{b}", LABEL, LABEL),
)
PASSWORD_LOGINS = st.fixed_dictionaries(
    {
        "username": st.from_regex(r"\A[\x21-\x7e]{1,40}\Z"),
        "password_secret": st.from_regex(r"\A[0-9A-Za-z-]{1,40}\Z"),
    }
)
IDENTITY_LOGINS = st.builds(
    lambda rg, name: {
        "identity": f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{rg}/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    },
    st.from_regex(r"\A[A-Za-z0-9_.()-]{1,30}\Z"),
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{2,30}\Z"),
)
BAD_HOSTS = st.one_of(
    st.sampled_from(["", "-x.io", "a..b", "ghcr.io/", "host:port", "a_b.io"]),
    st.text(min_size=256, max_size=300, alphabet="a"),
)
BAD_LOGINS = st.one_of(
    st.just({}),
    st.just({"username": "u"}),
    st.just({"password_secret": "p"}),
    st.just({"username": "has space", "password_secret": "p"}),
    st.just({"username": "u", "password_secret": "under_score"}),
    st.just({"username": "u", "password_secret": "p", "identity": IDENTITY}),
    st.just({"identity": "/subscriptions/x/identity"}),
    st.just({"username": "u", "password": "a literal password is refused"}),
    st.builds(lambda n: {"username": "u", "password_secret": "a" * n}, st.integers(128, 300)),
)
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)


@PROPERTY
@given(st.dictionaries(HOSTS, PASSWORD_LOGINS, max_size=5), st.sampled_from([0, 1]))
def test_registry_credentials_inside_the_form_are_accepted(value: dict[str, Any], with_identity: int) -> None:
    if with_identity:
        value = {**value, "acme.azurecr.io": {"identity": IDENTITY}}
    config = AzureConfig.model_validate({"registry_credentials": value})
    assert {h: c.model_dump(exclude_none=True) for h, c in config.registry_credentials.items()} == value


@PROPERTY
@given(IDENTITY_LOGINS)
def test_an_identity_resource_id_is_accepted_for_acr(login: dict[str, str]) -> None:
    AzureConfig.model_validate({"registry_credentials": {"x.azurecr.io": login}})


@PROPERTY
@given(host=BAD_HOSTS, login=PASSWORD_LOGINS)
def test_a_registry_that_is_not_a_host_is_refused(host: str, login: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="registry_credentials"):
        AzureConfig.model_validate({"registry_credentials": {host: login}})


@PROPERTY
@given(host=HOSTS, login=BAD_LOGINS)
def test_a_login_outside_the_form_is_refused(host: str, login: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="registry_credentials"):
        AzureConfig.model_validate({"registry_credentials": {host: login}})


def test_an_identity_is_only_for_acr_and_64_registries_at_most() -> None:
    with pytest.raises(ValidationError, match="Azure Container Registry"):
        AzureConfig.model_validate({"registry_credentials": {"ghcr.io": {"identity": IDENTITY}}})
    with pytest.raises(ValidationError, match="at most 64"):
        AzureConfig.model_validate(
            {
                "registry_credentials": {
                    f"r{i}.io": {"username": "u", "password_secret": "p"} for i in range(65)
                }
            }
        )


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(host=st.one_of(HOSTS, BAD_HOSTS), login=st.one_of(PASSWORD_LOGINS, BAD_LOGINS))
def test_config_validate_answers_cleanly_for_registry_credentials(
    host: str, login: dict[str, str], runvoy_home: Path
) -> None:
    from runvoy_cli.main import cli

    inline = ", ".join(f"{k} = {toml_string(v)}" for k, v in login.items())
    Path(os.environ["RUNVOY_CONFIG"]).write_text(
        f"[providers.azure]\nregistry_credentials = {{ {toml_string(host)} = {{ {inline} }} }}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["config", "validate"], prog_name="runvoy", catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    try:
        AzureConfig.model_validate({"registry_credentials": {host: login}})
        expected = 0
    except ValidationError:
        expected = 125
    assert result.exit_code == expected, result.stderr
    if expected:
        assert (
            "registry_credentials" in result.stderr or "TOML" in result.stderr
        ) and "Traceback" not in result.stderr


def test_the_default_image_is_the_configured_one(provider: Any) -> None:
    """`DefaultImage`: the core checks and pins what a run without --image runs (issue 20)."""
    from runvoy_core.ports.optional import DefaultImage

    assert isinstance(provider, DefaultImage)
    assert provider.default_image() == provider.config.default_image
