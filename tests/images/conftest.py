"""Real registries on 127.0.0.1 for the image tests (Debian's docker-registry), one of each kind per session,
with the images the tests resolve pushed through the registry API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runvoy_core.images.registry import cache_directory, clear_process_cache
from runvoy_core.testing.registry import (
    PASSWORD,
    USER,
    Registry,
    RegistryServer,
    TokenServer,
    make_tls_material,
    registry_available,
)


def _skip_without_registry() -> None:
    reason = registry_available()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _registry_checks_on(runvoy_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kit's home turns the registry check off (no registry is reachable elsewhere); here it is what is
    tested, against the registry these tests start."""
    monkeypatch.delenv("RUNVOY_IMAGES__CHECK", raising=False)


@pytest.fixture(autouse=True)
def _fresh_process_cache() -> Iterator[None]:
    clear_process_cache()
    yield
    clear_process_cache()


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """No auth, plain HTTP."""
    _skip_without_registry()
    with RegistryServer(tmp_path_factory.mktemp("plain-registry")) as server:
        images = {
            "multi": server.push_image("team/app", "1.0", ["linux/amd64", "linux/arm64"]),
            "amd64-only": server.push_image("team/amd64-only", "1.0", ["linux/amd64"], single=True),
            "amd64-index": server.push_image("team/amd64-index", "1.0", ["linux/amd64"]),
            "arm-variant": server.push_image(
                "team/arm", "v8", ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
            ),
        }
        yield Registry(server, images)


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """htpasswd (Basic) auth over TLS, with a certificate from a CA made for the session."""
    _skip_without_registry()
    directory = tmp_path_factory.mktemp("tls-registry")
    tls = make_tls_material(directory / "tls")
    with RegistryServer(directory, auth="htpasswd", users={USER: PASSWORD}, tls=tls) as server:
        images = {
            "multi": server.push_image(
                "private/app", "2.0", ["linux/amd64", "linux/arm64"], docker_types=True
            )
        }
        yield Registry(server, images, tls=tls)


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Bearer-token auth: anonymous pull under public/, credentials for everything else."""
    _skip_without_registry()
    directory = tmp_path_factory.mktemp("token-registry")
    token_server = TokenServer(directory / "token", {USER: PASSWORD}).start()
    try:
        with RegistryServer(directory, auth="token", token_server=token_server) as server:
            images = {
                "public": server.push_image("public/tool", "3", ["linux/amd64", "linux/arm64"]),
                "private": server.push_image("private/tool", "3", ["linux/amd64"], single=True),
            }
            yield Registry(server, images, token_server=token_server)
    finally:
        token_server.stop()


@pytest.fixture
def cache_dir(runvoy_home: Path) -> Path:
    return cache_directory(runvoy_home)
