"""Resolution against real registries on 127.0.0.1: existence, platforms, digests, auth, TLS."""

from __future__ import annotations

import socket

import pytest

from runvoy_core.errors import (
    ImageAuthFailed,
    ImageCheckFailed,
    ImageNotFound,
    ImagePlatformMissing,
    RegistryUnreachable,
    RunvoyError,
)
from runvoy_core.images.config import ImagesConfig
from runvoy_core.images.registry import (
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Platform,
    RegistryClient,
    RegistryCredentials,
)
from runvoy_core.testing.registry import PASSWORD, USER, Registry

AMD64 = Platform.for_architecture("x86_64")
ARM64 = Platform.for_architecture("arm64")


def plain_client(registry: Registry) -> RegistryClient:
    return RegistryClient(ImagesConfig(registries={registry.host: {"plain_http": True}}))


def tls_client(registry: Registry, **extra: object) -> RegistryClient:
    assert registry.tls is not None
    return RegistryClient(
        ImagesConfig(registries={registry.host: {"ca_bundle": registry.tls.ca_cert, **extra}})
    )


# -- no auth -----------------------------------------------------------------------------------------------


def test_an_index_resolves_to_the_pushed_digests_for_each_platform(plain_registry: Registry) -> None:
    pushed = plain_registry.images["multi"]
    client = plain_client(plain_registry)
    for platform, wanted in ((AMD64, "linux/amd64"), (ARM64, "linux/arm64")):
        resolved = client.resolve(f"{plain_registry.host}/team/app:1.0", platform)
        assert resolved.digest == pushed.digest
        assert resolved.platform_digest == pushed.platforms[wanted]
        assert resolved.pinned == f"{plain_registry.host}/team/app@{pushed.digest}"
        assert resolved.media_type == OCI_INDEX
        assert resolved.platform == wanted


def test_a_reference_by_digest_resolves_to_that_digest(plain_registry: Registry) -> None:
    pushed = plain_registry.images["multi"]
    resolved = plain_client(plain_registry).resolve(f"{plain_registry.host}/team/app@{pushed.digest}", ARM64)
    assert resolved.digest == pushed.digest
    assert resolved.platform_digest == pushed.platforms["linux/arm64"]


def test_a_single_manifest_resolves_with_its_platform_read_from_its_config(plain_registry: Registry) -> None:
    pushed = plain_registry.images["amd64-only"]
    resolved = plain_client(plain_registry).resolve(f"{plain_registry.host}/team/amd64-only:1.0", AMD64)
    assert resolved.digest == resolved.platform_digest == pushed.digest
    assert resolved.media_type == OCI_MANIFEST


@pytest.mark.parametrize("image", ["amd64-only", "amd64-index"])
def test_an_arm64_run_refuses_an_amd64_only_image(plain_registry: Registry, image: str) -> None:
    repository = plain_registry.images[image].repository
    with pytest.raises(ImagePlatformMissing) as caught:
        plain_client(plain_registry).resolve(f"{plain_registry.host}/{repository}:1.0", ARM64)
    assert "linux/arm64" in caught.value.message
    assert "linux/amd64" in caught.value.message
    assert caught.value.exit_code == 125
    assert "--platform" in caught.value.hint


def test_a_variant_is_matched_and_an_arm64_entry_without_one_counts_as_v8(plain_registry: Registry) -> None:
    pushed = plain_registry.images["arm-variant"]
    client = plain_client(plain_registry)
    reference = f"{plain_registry.host}/team/arm:v8"
    assert (
        client.resolve(reference, Platform("linux", "arm64", "v8")).platform_digest
        == pushed.platforms["linux/arm64/v8"]
    )
    assert (
        client.resolve(reference, Platform("linux", "arm", "v7")).platform_digest
        == pushed.platforms["linux/arm/v7"]
    )
    with pytest.raises(ImagePlatformMissing, match="linux/arm/v6"):
        client.resolve(reference, Platform("linux", "arm", "v6"))


def test_a_missing_tag_is_refused_and_the_existing_tags_are_named(plain_registry: Registry) -> None:
    with pytest.raises(ImageNotFound) as caught:
        plain_client(plain_registry).resolve(f"{plain_registry.host}/team/app:1.1", AMD64)
    assert "has no tag '1.1'" in caught.value.message
    assert caught.value.details["missing"] == "tag"
    assert "1.0" in caught.value.hint


def test_a_missing_repository_is_refused_as_such(plain_registry: Registry) -> None:
    with pytest.raises(ImageNotFound) as caught:
        plain_client(plain_registry).resolve(f"{plain_registry.host}/team/ap:1.0", AMD64)
    assert "repository" in caught.value.message and "does not exist" in caught.value.message
    assert caught.value.details["missing"] == "repository"


def test_a_missing_digest_is_refused(plain_registry: Registry) -> None:
    digest = "sha256:" + "0" * 64
    with pytest.raises(ImageNotFound) as caught:
        plain_client(plain_registry).resolve(f"{plain_registry.host}/team/app@{digest}", AMD64)
    assert digest in caught.value.message


def test_a_registry_nobody_listens_on_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RegistryClient(ImagesConfig(registries={f"127.0.0.1:{port}": {"plain_http": True}}))
    with pytest.raises(RegistryUnreachable, match=f"127.0.0.1:{port}"):
        client.resolve(f"127.0.0.1:{port}/team/app:1.0", AMD64)


def test_https_to_a_plain_http_registry_is_unreachable_not_a_crash(plain_registry: Registry) -> None:
    with pytest.raises(RegistryUnreachable):
        RegistryClient().resolve(f"{plain_registry.host}/team/app:1.0", AMD64)


# -- Basic auth over TLS ------------------------------------------------------------------------------------


def test_basic_auth_is_refused_without_credentials(tls_registry: Registry) -> None:
    with pytest.raises(ImageAuthFailed) as caught:
        tls_client(tls_registry).resolve(f"{tls_registry.host}/private/app:2.0", AMD64)
    assert "username and password" in caught.value.message
    assert tls_registry.host in caught.value.hint


def test_basic_auth_works_with_credentials_over_tls_with_the_custom_ca(tls_registry: Registry) -> None:
    pushed = tls_registry.images["multi"]
    resolved = tls_client(tls_registry).resolve(
        f"{tls_registry.host}/private/app:2.0", ARM64, RegistryCredentials(USER, PASSWORD)
    )
    assert resolved.digest == pushed.digest
    assert resolved.platform_digest == pushed.platforms["linux/arm64"]
    assert resolved.media_type == DOCKER_MANIFEST_LIST


def test_wrong_credentials_are_refused_and_the_password_is_never_shown(tls_registry: Registry) -> None:
    client = tls_client(tls_registry)
    # a right password first: its cached answer must not let the wrong one through
    client.resolve(f"{tls_registry.host}/private/app:2.0", AMD64, RegistryCredentials(USER, PASSWORD))
    wrong = RegistryCredentials(USER, "not-the-password-xyzzy")
    with pytest.raises(ImageAuthFailed) as caught:
        client.resolve(f"{tls_registry.host}/private/app:2.0", AMD64, wrong)
    shown = f"{caught.value} {caught.value.hint} {caught.value.to_dict()} {wrong!r}"
    assert "not-the-password-xyzzy" not in shown
    assert f"user {USER}" in caught.value.message


def test_credentials_come_from_the_environment_variables_the_config_names(tls_registry: Registry) -> None:
    assert tls_registry.tls is not None
    config = ImagesConfig(
        registries={
            tls_registry.host: {
                "ca_bundle": tls_registry.tls.ca_cert,
                "username_env": "REG_USER",
                "password_env": "REG_PASSWORD",
            }
        }
    )
    environ = {"REG_USER": USER, "REG_PASSWORD": PASSWORD}
    resolved = RegistryClient(config, environ=environ).resolve(f"{tls_registry.host}/private/app:2.0", AMD64)
    assert resolved.digest == tls_registry.images["multi"].digest
    with pytest.raises(ImageAuthFailed, match="REG_PASSWORD, which is not set") as caught:
        RegistryClient(config, environ={"REG_USER": USER}).resolve(
            f"{tls_registry.host}/private/app:2.0", AMD64
        )
    assert "export REG_PASSWORD" in caught.value.hint


def test_tls_without_the_custom_ca_is_refused_with_a_hint_to_configure_it(tls_registry: Registry) -> None:
    with pytest.raises(RegistryUnreachable) as caught:
        RegistryClient().resolve(
            f"{tls_registry.host}/private/app:2.0", AMD64, RegistryCredentials(USER, PASSWORD)
        )
    assert "not trusted" in caught.value.message
    assert "ca_bundle" in caught.value.hint


def test_an_unreadable_ca_bundle_is_named(tls_registry: Registry, tmp_path: object) -> None:
    client = RegistryClient(
        ImagesConfig(registries={tls_registry.host: {"ca_bundle": "/nonexistent/ca.pem"}})
    )
    with pytest.raises(RegistryUnreachable, match=r"/nonexistent/ca\.pem"):
        client.resolve(f"{tls_registry.host}/private/app:2.0", AMD64)


# -- bearer tokens ------------------------------------------------------------------------------------------


def test_bearer_token_anonymous_pull_of_a_public_repository(token_registry: Registry) -> None:
    pushed = token_registry.images["public"]
    resolved = plain_client(token_registry).resolve(f"{token_registry.host}/public/tool:3", ARM64)
    assert resolved.digest == pushed.digest
    assert resolved.platform_digest == pushed.platforms["linux/arm64"]


def test_bearer_token_private_repository_needs_credentials(token_registry: Registry) -> None:
    with pytest.raises(ImageAuthFailed, match="without credentials"):
        plain_client(token_registry).resolve(f"{token_registry.host}/private/tool:3", AMD64)
    resolved = plain_client(token_registry).resolve(
        f"{token_registry.host}/private/tool:3", AMD64, RegistryCredentials(USER, PASSWORD)
    )
    assert resolved.digest == token_registry.images["private"].digest


def test_bearer_token_service_refuses_wrong_credentials(token_registry: Registry) -> None:
    with pytest.raises(ImageAuthFailed, match="token service") as caught:
        plain_client(token_registry).resolve(
            f"{token_registry.host}/private/tool:3", AMD64, RegistryCredentials(USER, "nope-12345")
        )
    assert "nope-12345" not in str(caught.value.to_dict())


def test_a_token_is_reused_until_it_expires(token_registry: Registry) -> None:
    assert token_registry.token_server is not None
    client = plain_client(token_registry)
    before = token_registry.token_server.requests
    for _ in range(3):
        client.resolve(f"{token_registry.host}/private/tool:3", AMD64, RegistryCredentials(USER, PASSWORD))
    assert token_registry.token_server.requests == before + 1


def test_every_failure_is_a_runvoy_error_with_exit_125() -> None:
    for cls in (ImageNotFound, ImagePlatformMissing, ImageAuthFailed, RegistryUnreachable):
        assert issubclass(cls, ImageCheckFailed) and issubclass(cls, RunvoyError)
        assert cls("x").exit_code == 125


@pytest.mark.parametrize("fault", ["503", "429", "drop", "reset"])
def test_a_failing_registry_is_unreachable_with_a_retry_hint(plain_registry: Registry, fault: str) -> None:
    from runvoy_core.testing.faultproxy import Chaos, FaultProxy

    with FaultProxy(plain_registry.server.url, Chaos(seed=1, probabilities={fault: 1.0})) as proxy:
        host = f"127.0.0.1:{proxy.port}"
        client = RegistryClient(ImagesConfig(registries={host: {"plain_http": True}}))
        with pytest.raises(RegistryUnreachable) as caught:
            client.resolve(f"{host}/team/app:1.0", AMD64)
    assert host in caught.value.message
    assert caught.value.exit_code == 125
