"""`runvoy run --image`: the image is checked before the lock, the record and the start, its digest is recorded,
and the task runs the pinned reference (issue 20 items 1, 2 and 4; decision 0804).

The runs go through the real console script and the local provider, whose container runtime is a script
standing in for podman (not installed here): it prints the image it was asked to run, so what reached
``compute.start`` is read from the run's output. Registries are the real ones of conftest.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.errors import ImageAuthFailed, ImagePlatformMissing
from runvoy_core.images.check import check_request
from runvoy_core.images.reference import parse_reference
from runvoy_core.models import ExecutionRequest
from runvoy_core.testing.faultproxy import Chaos, FaultProxy
from runvoy_core.testing.registry import PASSWORD, USER, PushedImage, Registry

RUNVOY = str(Path(sys.executable).parent / "runvoy")
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
OTHER_ARCH = "arm64" if HOST_ARCH == "amd64" else "amd64"

FAKE_PODMAN = """#!/bin/sh
# stands in for podman: prints the image it was asked to run, runs nothing
while [ $# -gt 0 ]; do
  case "$1" in
    run|--rm|-i) shift ;;
    --runtime|--name|--label|-e|-w) shift 2 ;;
    *) echo "fake-podman image=$1"; exit 0 ;;
  esac
done
exit 3
"""


@pytest.fixture
def fake_podman(tmp_path: Path) -> Path:
    path = tmp_path / "fake-podman"
    path.write_text(FAKE_PODMAN)
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def other_arch_only(plain_registry: Registry) -> PushedImage:
    """An image for the other architecture than this machine's only (the local provider runs this machine's)."""
    return plain_registry.server.push_image(f"team/{OTHER_ARCH}-only", "1", [f"linux/{OTHER_ARCH}"])


def write_config(fake_podman: Path, registries: dict[str, dict[str, Any]], images: str = "") -> None:
    lines = [
        "[providers.local]",
        'container_runtime = "podman"',
        f"runtime_path = {json.dumps(str(fake_podman))}",
        "[images]",
        images,
    ]
    for host, settings in registries.items():
        lines.append(f'[images.registries."{host}"]')
        lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    Path(os.environ["RUNVOY_CONFIG"]).write_text("\n".join(lines) + "\n")


def runvoy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNVOY, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_json(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    done = runvoy("run", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def assert_refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 125, one error line naming the check, a hint; nothing recorded and no lock taken."""
    assert done.returncode == 125, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("error: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)
    assert "hint: " in done.stderr, done.stderr
    assert "fake-podman" not in done.stdout + done.stderr  # nothing was started
    assert json.loads(runvoy("list", "--json").stdout) == []
    assert json.loads(runvoy("locks", "list", "--json").stdout) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a good image ------------------------------------------------------------------------------------------------


def test_a_run_records_the_digest_and_runs_the_pinned_reference(
    plain_registry: Registry, fake_podman: Path
) -> None:
    write_config(fake_podman, {plain_registry.host: {"plain_http": True}})
    image = plain_registry.images["multi"]
    reference = f"{plain_registry.host}/team/app:1.0"
    record, err = run_json("--image", reference, "--lock", "deploy", "true")
    pinned = f"{plain_registry.host}/team/app@{image.digest}"
    assert f"fake-podman image={pinned}" in err  # what compute.start was handed: the digest, not the tag
    assert record["status"] == "SUCCEEDED"
    assert record["request"]["image"] == reference  # as given
    assert record["request"]["image_digest"] == image.digest
    assert record["request"]["image_platform_digest"] == image.platforms[f"linux/{HOST_ARCH}"]

    shown = runvoy("status", record["id"])
    assert shown.returncode == 0, shown.stderr
    assert f"image digest: {image.digest}" in " ".join(shown.stdout.split())
    as_json = json.loads(runvoy("status", "--json", record["id"]).stdout)
    assert as_json["request"]["image_digest"] == image.digest


def test_a_tag_moved_after_the_check_does_not_change_what_runs(
    plain_registry: Registry, fake_podman: Path
) -> None:
    server = plain_registry.server
    first = server.push_image("team/moving", "stable", ["linux/amd64", "linux/arm64"])
    write_config(fake_podman, {plain_registry.host: {"plain_http": True}})
    reference = f"{plain_registry.host}/team/moving:stable"
    record, err = run_json("--image", reference, "true")
    assert record["request"]["image_digest"] == first.digest
    assert f"image={plain_registry.host}/team/moving@{first.digest}" in err
    moved = server.push_image("team/moving", "stable", ["linux/amd64"])  # the tag now names other bytes
    assert moved.digest != first.digest
    # the record keeps what ran, and it is what its request would run again, whatever the tag says now
    request = ExecutionRequest.model_validate(record["request"])
    assert request.pinned_image() == f"{plain_registry.host}/team/moving@{first.digest}"


def test_an_old_record_without_a_digest_still_loads() -> None:
    old = {"command": "true", "image": "python:3.12"}  # written before issue 20
    request = ExecutionRequest.model_validate(old)
    assert request.image_digest is None and request.pinned_image() == "python:3.12"


# -- each failure: its message, exit 125, no record, no lock -------------------------------------------------------


def test_a_malformed_reference_is_refused(plain_registry: Registry, fake_podman: Path) -> None:
    write_config(fake_podman, {plain_registry.host: {"plain_http": True}})
    done = runvoy("run", "--image", f"{plain_registry.host}/Team/App:1", "--lock", "x", "true")
    assert_refused(done, "invalid image reference", "lower case")


def test_a_missing_repository_is_refused(plain_registry: Registry, fake_podman: Path) -> None:
    write_config(fake_podman, {plain_registry.host: {"plain_http": True}})
    done = runvoy("run", "--image", f"{plain_registry.host}/team/nope:1", "--lock", "x", "true")
    assert_refused(done, f"repository {plain_registry.host}/team/nope does not exist")


def test_a_missing_tag_is_refused_naming_the_tags_there_are(
    plain_registry: Registry, fake_podman: Path
) -> None:
    write_config(fake_podman, {plain_registry.host: {"plain_http": True}})
    done = runvoy("run", "--image", f"{plain_registry.host}/team/app:9.9", "--lock", "x", "true")
    assert_refused(done, "has no tag '9.9'", "the repository has the tags: 1.0")


def test_an_image_without_this_platform_is_refused_listing_what_it_has(
    plain_registry: Registry, other_arch_only: PushedImage, fake_podman: Path
) -> None:
    write_config(fake_podman, {plain_registry.host: {"plain_http": True}})
    done = runvoy("run", "--image", f"{plain_registry.host}/team/{OTHER_ARCH}-only:1", "--lock", "x", "true")
    assert_refused(done, f"no manifest for linux/{HOST_ARCH}", f"it has: linux/{OTHER_ARCH}", "buildx")


def test_an_arm64_run_refuses_an_amd64_only_image(plain_registry: Registry, runvoy_home: Path) -> None:
    images = {"registries": {plain_registry.host: {"plain_http": True}}}
    request = ExecutionRequest.model_validate(
        {
            "command": "true",
            "image": f"{plain_registry.host}/team/amd64-only:1.0",
            "resources": {"architecture": "arm64"},
        }
    )
    with pytest.raises(ImagePlatformMissing, match=r"built for linux/amd64 only; this run needs linux/arm64"):
        check_request(request, images=images, home=runvoy_home)
    amd64 = ExecutionRequest.model_validate({"command": "true", "image": request.image})
    assert check_request(amd64, images=images, home=runvoy_home).image_digest == (
        plain_registry.images["amd64-only"].digest
    )


def test_wrong_credentials_are_refused(tls_registry: Registry, fake_podman: Path) -> None:
    assert tls_registry.tls is not None
    write_config(
        fake_podman,
        {
            tls_registry.host: {
                "username_env": "REG_USER",
                "password_env": "REG_PASSWORD",
                "ca_bundle": str(tls_registry.tls.ca_cert),
            }
        },
    )
    reference = f"{tls_registry.host}/private/app:2.0"
    env = {"REG_USER": USER, "REG_PASSWORD": "wrong-password"}
    done = runvoy("run", "--image", reference, "--lock", "x", "true", env=env)
    assert_refused(done, "the configured credentials are wrong", "[images.registries")
    assert "wrong-password" not in done.stderr
    good, _ = run_json("--image", reference, "true", env={**env, "REG_PASSWORD": PASSWORD})
    assert good["request"]["image_digest"] == tls_registry.images["multi"].digest


def test_an_untrusted_certificate_names_ca_bundle(tls_registry: Registry, fake_podman: Path) -> None:
    write_config(fake_podman, {})
    done = runvoy("run", "--image", f"{tls_registry.host}/private/app:2.0", "--lock", "x", "true")
    assert_refused(done, "is not trusted", "ca_bundle")


def test_an_unreachable_registry_is_refused(fake_podman: Path) -> None:
    host = f"127.0.0.1:{closed_port()}"
    write_config(fake_podman, {host: {"plain_http": True}})
    done = runvoy("run", "--image", f"{host}/team/app:1.0", "--lock", "x", "true")
    assert_refused(done, f"cannot reach registry {host}", "--no-image-check")


# -- --no-image-check, the cache ----------------------------------------------------------------------------------


def test_no_image_check_never_asks_the_registry(fake_podman: Path) -> None:
    host = f"127.0.0.1:{closed_port()}"  # nothing listens: any request would fail the run
    write_config(fake_podman, {host: {"plain_http": True}})
    record, err = run_json("--no-image-check", "--image", f"{host}/team/app:1.0", "true")
    assert record["status"] == "SUCCEEDED" and record["request"]["image_digest"] is None
    assert f"fake-podman image={host}/team/app:1.0" in err  # as given: there is no digest to pin
    digest = "sha256:" + "a" * 64
    record, err = run_json("--no-image-check", "--image", f"{host}/team/app@{digest}", "true")
    assert record["request"]["image_digest"] == digest  # named by the reference itself


def test_a_playbook_can_skip_the_check(tmp_path: Path, fake_podman: Path) -> None:
    host = f"127.0.0.1:{closed_port()}"
    write_config(fake_podman, {host: {"plain_http": True}})
    book = tmp_path / "book.yaml"
    book.write_text(f"image: {host}/team/app:1.0\nimage_check: false\nsteps:\n  - run: 'true'\n")
    record, _ = run_json("-f", str(book))
    assert record["status"] == "SUCCEEDED"
    book.write_text(f"image: {host}/team/app:1.0\nimage_check: 'no'\nsteps:\n  - run: 'true'\n")
    done = runvoy("run", "-f", str(book))
    assert done.returncode == 125 and "image_check" in done.stderr, done.stderr


@pytest.fixture
def counted(plain_registry: Registry) -> Iterator[tuple[FaultProxy, Chaos]]:
    chaos = Chaos(seed=0, enabled=False)
    with FaultProxy(plain_registry.server.url, chaos, name="registry") as proxy:
        yield proxy, chaos


def test_a_second_run_within_the_ttl_sends_no_request(
    counted: tuple[FaultProxy, Chaos], plain_registry: Registry, fake_podman: Path
) -> None:
    proxy, chaos = counted
    host = f"127.0.0.1:{proxy.port}"
    write_config(fake_podman, {host: {"plain_http": True}})
    first, _ = run_json("--image", f"{host}/team/app:1.0", "true")
    assert len(chaos.log) == 1  # one round trip: the manifest
    second, err = run_json("--image", f"{host}/team/app:1.0", "true")
    assert len(chaos.log) == 1  # the cache in RUNVOY_HOME answered
    digest = plain_registry.images["multi"].digest
    assert first["request"]["image_digest"] == second["request"]["image_digest"] == digest
    assert f"fake-podman image={host}/team/app@{digest}" in err


# -- policy -------------------------------------------------------------------------------------------------------


def test_a_policy_refusal_names_the_rule_and_asks_no_registry(
    counted: tuple[FaultProxy, Chaos], fake_podman: Path
) -> None:
    proxy, chaos = counted
    host = f"127.0.0.1:{proxy.port}"
    write_config(fake_podman, {host: {"plain_http": True}}, images='block = ["*/team/app:*"]')
    done = runvoy("run", "--image", f"{host}/team/app:1.0", "--lock", "x", "true")
    assert_refused(done, "blocked by [images] block rule '*/team/app:*'")
    # --no-image-check skips the registry, never the policy
    done = runvoy("run", "--no-image-check", "--image", f"{host}/team/app:1.0", "--lock", "x", "true")
    assert_refused(done, "block rule '*/team/app:*'")
    write_config(fake_podman, {host: {"plain_http": True}}, images='allow = ["docker.io/library/*"]')
    done = runvoy("run", "--image", f"{host}/team/app:1.0", "--lock", "x", "true")
    assert_refused(done, "matches no [images] allow rule", "docker.io/library/*")
    assert chaos.log == []


def test_the_policy_is_per_profile(
    counted: tuple[FaultProxy, Chaos], plain_registry: Registry, fake_podman: Path
) -> None:
    proxy, chaos = counted
    host = f"127.0.0.1:{proxy.port}"
    write_config(fake_podman, {host: {"plain_http": True}})
    config = Path(os.environ["RUNVOY_CONFIG"])
    config.write_text(config.read_text() + "[profiles.strict.images]\nrequire_digest = true\n")
    done = runvoy("--profile", "strict", "run", "--image", f"{host}/team/app:1.0", "--lock", "x", "true")
    assert_refused(done, "require_digest = true", "pin the image by digest")
    assert chaos.log == []
    digest = plain_registry.images["multi"].digest
    record, _ = run_json("--image", f"{host}/team/app:1.0", "true")  # the default profile has no such rule
    pinned, _ = run_json("--image", f"{host}/team/app@{digest}", "true", env={"RUNVOY_PROFILE": "strict"})
    assert pinned["request"]["image_digest"] == record["request"]["image_digest"] == digest


def test_a_bad_images_section_is_a_config_error(fake_podman: Path) -> None:
    write_config(fake_podman, {}, images="cache_ttl = 99999")
    done = runvoy("run", "--image", "python:3.12", "true")
    assert done.returncode == 125 and "images.cache_ttl" in done.stderr, done.stderr
    validated = runvoy("config", "validate")
    assert validated.returncode == 125 and "images.cache_ttl" in validated.stderr, validated.stderr


# -- the provider's own registry login (RegistryLogin) ----------------------------------------------------------


class _CloudWithRegistry:
    """Stands in for a provider plugin that implements RegistryLogin for its own registry (ECR, ACR...)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.asked: list[str] = []

    def registry_login(self, registry: str) -> tuple[str, str] | None:
        self.asked.append(registry)
        return (USER, PASSWORD) if registry == self.host else None


def test_the_provider_s_registry_login_comes_first(token_registry: Registry, runvoy_home: Path) -> None:
    reference = f"{token_registry.host}/private/tool:3"
    request = ExecutionRequest(command="true", image=reference)
    images = {"registries": {token_registry.host: {"plain_http": True}}}
    with pytest.raises(ImageAuthFailed):
        check_request(request, images=images, home=runvoy_home)  # anonymous: private/ needs credentials
    cloud = _CloudWithRegistry(token_registry.host)
    checked = check_request(request, images=images, home=runvoy_home, provider=cloud, provider_name="cloud")
    assert checked.image_digest == token_registry.images["private"].digest
    assert checked.pinned_image() == parse_reference(reference).pinned(checked.image_digest)
    assert cloud.asked == [token_registry.host]
    check_request(request, images=images, home=runvoy_home, provider=cloud, provider_name="cloud")
    assert cloud.asked == [token_registry.host]  # a cache hit needs no login
    elsewhere = _CloudWithRegistry("registry.example")
    with pytest.raises(ImageAuthFailed):  # no login for this host: back to the (empty) config
        check_request(
            request.model_copy(update={"image": f"{token_registry.host}/private/tool:4"}),
            images=images,
            home=runvoy_home,
            provider=elsewhere,
            provider_name="cloud",
        )


def test_a_detached_start_is_checked_and_pinned_too(plain_registry: Registry, fake_podman: Path) -> None:
    write_config(fake_podman, {plain_registry.host: {"plain_http": True}})
    done = runvoy("run", "--detach", "--image", f"{plain_registry.host}/team/app:9.9", "--lock", "x", "true")
    assert_refused(done, "has no tag '9.9'")
    done = runvoy("run", "--detach", "--json", "--image", f"{plain_registry.host}/team/app:1.0", "true")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["request"]["image_digest"] == plain_registry.images["multi"].digest
