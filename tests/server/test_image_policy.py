"""Issue 20 item 4 through a server: the `[images]` policy is the server's, enforced for everyone who runs
through it — a client's own config, `--no-image-check` or the Python API cannot get around it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from runvoy_core.errors import ImagePolicyRefused
from runvoy_core.testing.waiting import DEADLINE
from tests.server.conftest import RUNVOY, RunningServer, StartServer, new_token

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
NOWHERE = "127.0.0.1:9"
"""A registry nobody answers on: a policy refusal must come before any registry is asked."""


@pytest.fixture
def strict_server(start_server: StartServer, tmp_path: Path) -> RunningServer:
    podman = tmp_path / "fake-podman"
    podman.write_text(FAKE_PODMAN)
    podman.chmod(0o755)
    home = tmp_path / "server-home"
    home.mkdir()
    config = tmp_path / "server.toml"
    config.write_text(
        "[providers.local]\n"
        'container_runtime = "podman"\n'
        f"runtime_path = {json.dumps(str(podman))}\n"
        "[images]\n"
        'block = ["*/team/forbidden:*"]\n'
    )
    return start_server(home=home, token=new_token(), env={"RUNVOY_CONFIG": str(config)})


def _client(server: RunningServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # the client's own config allows everything and would not even check images
    config = tmp_path / "client.toml"
    config.write_text("[images]\ncheck = false\nblock = []\n")
    assert server.token is not None
    env = {
        **os.environ,
        "RUNVOY_SERVER": server.url,
        "RUNVOY_TOKEN": server.token,
        "RUNVOY_CONFIG": str(config),
        "RUNVOY_WARM": "0",
    }
    return subprocess.run(
        [RUNVOY, *args], capture_output=True, text=True, env=env, timeout=DEADLINE * 2, check=False
    )


def test_the_servers_image_policy_holds_for_every_client(
    strict_server: RunningServer, tmp_path: Path
) -> None:
    for extra in ((), ("--no-image-check",), ("--detach",)):
        done = _client(
            strict_server, tmp_path, "run", *extra, "--image", f"{NOWHERE}/team/forbidden:1", "true"
        )
        assert done.returncode == ImagePolicyRefused.exit_code, done.stderr
        assert "block rule '*/team/forbidden:*'" in done.stderr
        assert "Traceback" not in done.stderr and "fake-podman" not in done.stdout
    assert json.loads(_client(strict_server, tmp_path, "list", "--json").stdout) == []

    # the Python API through the server is held to the same rule
    from runvoy_core.api import Runvoy

    with (
        Runvoy(server=strict_server.url, token=strict_server.token) as rv,
        pytest.raises(ImagePolicyRefused, match="block rule"),
    ):
        rv.submit("true", image=f"{NOWHERE}/team/forbidden:1", image_check=False)

    # an image the policy allows runs (its registry is not asked with --no-image-check)
    allowed = _client(
        strict_server, tmp_path, "run", "--no-image-check", "--image", f"{NOWHERE}/team/app:1", "true"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert f"fake-podman image={NOWHERE}/team/app:1" in allowed.stdout
