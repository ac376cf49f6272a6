"""A run that names no image runs the provider's default one, and that one is checked and pinned like any other
(issue 20 items 1 and 2, `DefaultImage`): the record says which bytes ran, the task definition runs the digest,
and a default image that does not exist stops the run before anything starts. Against a real registry on
127.0.0.1 (the kit's RegistryServer) and moto with the simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_test_tools import config_dict

from runvoy_core.errors import ImageNotFound
from runvoy_core.models import Status
from runvoy_core.ports.optional import DefaultImage
from runvoy_core.testing.registry import PushedImage, RegistryServer, registry_available


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RegistryServer, PushedImage]]:
    missing = registry_available()
    if missing:
        pytest.skip(missing)
    with RegistryServer(tmp_path_factory.mktemp("default-image-registry")) as server:
        yield server, server.push_image("library/python", "3.12", ["linux/amd64", "linux/arm64"])


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch, registry: tuple[RegistryServer, PushedImage]) -> str:
    """The image check on (the kit's home turns it off), the test registry reachable over plain HTTP."""
    server, _ = registry
    monkeypatch.delenv("RUNVOY_IMAGES__CHECK", raising=False)
    Path(os.environ["RUNVOY_CONFIG"]).write_text(f'[images.registries."{server.host}"]\nplain_http = true\n')
    return server.host


def client(moto: str, image: str):  # type: ignore[no-untyped-def]
    from runvoy_core.api import Runvoy

    made = Runvoy(provider="aws", **config_dict(moto, image=image))
    made.provider.compute.start_retry_delay = 0.01
    made.provider.setup(dry_run=False)
    return made


def test_the_default_image_is_checked_recorded_and_pinned(
    moto, sim, checked: str, registry: tuple[RegistryServer, PushedImage]
) -> None:
    _, pushed = registry
    default = f"{checked}/library/python:3.12"
    rv = client(moto, default)
    try:
        assert isinstance(rv.provider, DefaultImage) and rv.provider.default_image() == default
        execution = rv.run("true")
        assert execution.status is Status.SUCCEEDED, execution.reason
        assert execution.request.image == default
        assert execution.request.image_digest == pushed.digest
        ecs = rv.provider.clients.client("ecs")
        task = ecs.describe_tasks(cluster="runvoy", tasks=[execution.task_ref])["tasks"][0]
        definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])["taskDefinition"]
        assert definition["containerDefinitions"][0]["image"] == f"{checked}/library/python@{pushed.digest}"
    finally:
        rv.close()


def test_a_default_image_that_does_not_exist_stops_the_run_before_it_starts(moto, sim, checked: str) -> None:
    rv = client(moto, f"{checked}/library/python:0.0-nosuch")
    try:
        with pytest.raises(ImageNotFound):
            rv.run("true")
        assert rv.list() == []  # nothing recorded
        assert rv.provider.clients.client("ecs").list_tasks(cluster="runvoy")["taskArns"] == []
    finally:
        rv.close()
