"""``runvoy users|keys|policies`` (decision 1519): on the provider's store when no server is configured, and
through a real ``runvoy server`` (RemoteTeamAdmin) with the same output, exit codes and errors; a teammate's
key made by the admin works at once, and is refused at once once revoked."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import RUNVOY, RunningServer, StartServer, new_token


def cli(
    server: RunningServer | None, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNVOY_SERVER", "RUNVOY_TOKEN")}
    if server is not None:
        env.update(RUNVOY_SERVER=server.url, RUNVOY_TOKEN=token or server.token or "")
    return subprocess.run([RUNVOY, *args], capture_output=True, text=True, timeout=120, env=env)


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout) if result.stdout.lstrip().startswith(("{", "[")) else result.stdout


@pytest.fixture
def remote(start_server: StartServer, tmp_path: Path) -> RunningServer:
    home = tmp_path / "server-home"
    home.mkdir()
    return start_server(home=home, token=new_token())


def _strip(users: list[dict[str, Any]]) -> list[tuple[str, str, str, str, bool]]:
    return [(u["name"], u["kind"], u["role"], u["team"], u["disabled"]) for u in users]


def test_the_same_commands_on_the_store_and_through_a_server(remote: RunningServer) -> None:
    seen = {}
    for side, server in (("local", None), ("remote", remote)):
        ok(cli(server, "users", "create", "alice", "--role", "operator", "--team", "data"))
        ok(cli(server, "users", "create", "ci-deploy", "--service", "--role", "operator", "--team", "data"))
        listed = ok(cli(server, "users", "list", "--team", "data", "--json"))
        table = ok(cli(server, "users", "list", "--kind", "service"))
        shown = ok(cli(server, "users", "show", "alice", "--json"))
        policy = ok(cli(server, "policies", "set", "data-etl", "--team", "data", "--lock", "etl-*", "--json"))
        policies = ok(cli(server, "policies", "list", "--json"))
        missing = cli(server, "users", "show", "nobody")
        bad = cli(server, "keys", "rotate", "0123456789abcdef")
        seen[side] = (
            _strip(listed),
            table.split("\n")[1].split()[:5],
            shown["name"],
            policy["locks"],
            policies,
        )
        seen[side + "-errors"] = [(r.returncode, r.stderr.splitlines()[0]) for r in (missing, bad)]
        removed = ok(cli(server, "policies", "remove", "data-etl", "--json"))
        assert removed["name"] == "data-etl"
        assert ok(cli(server, "policies", "list", "--json")) == []
    local_policies, remote_policies = seen["local"][4], seen["remote"][4]
    for found in (local_policies, remote_policies):
        for policy in found:
            policy.pop("updated_at"), policy.pop("updated_by")
    assert seen["local"] == seen["remote"]
    assert seen["local-errors"] == seen["remote-errors"]
    assert seen["remote-errors"][0] == (125, "error: no user 'nobody'")


def test_a_key_made_by_the_admin_works_at_once_and_is_refused_once_revoked(remote: RunningServer) -> None:
    ok(cli(remote, "users", "create", "bob", "--role", "viewer", "--team", "data"))
    made = cli(remote, "keys", "create", "bob", "--name", "laptop", "--expires", "2h")
    token = ok(made).strip()
    assert token.startswith("rvk_") and "shown this once" in made.stderr and token not in made.stderr

    me = ok(cli(remote, "users", "show", "bob", "--json", token=token))
    assert me["role"] == "viewer"
    refused = cli(remote, "users", "create", "eve", "--role", "admin", "--team", "data", token=token)
    assert refused.returncode == 77 and "may not" in refused.stderr, refused.stderr
    keys = ok(cli(remote, "keys", "list", "--json", token=token))
    assert [k["user"] for k in keys] == ["bob"] and all(token not in json.dumps(k) for k in keys)

    rotated = ok(cli(remote, "keys", "rotate", keys[0]["id"], "--overlap", "1m", "--json"))
    assert rotated["token"] != token and rotated["key"]["user"] == "bob"
    states = {k["id"]: k["state"] for k in ok(cli(remote, "keys", "list", "--user", "bob", "--json"))}
    assert states == {keys[0]["id"]: "rotated", rotated["key"]["id"]: "active"}

    ok(cli(remote, "keys", "revoke", keys[0]["id"]))
    gone = cli(remote, "users", "show", "bob", token=token)
    assert gone.returncode == 77 and "invalid API key" in gone.stderr
    assert token not in gone.stderr + gone.stdout
    ok(cli(remote, "users", "disable", "bob"))
    disabled = cli(remote, "keys", "list", token=rotated["token"])
    assert disabled.returncode == 77
    ok(cli(remote, "users", "enable", "bob"))
    assert ok(cli(remote, "keys", "list", "--json", token=rotated["token"]))


def test_bad_values_are_refused_before_anything_is_asked() -> None:
    for args in (
        ("users", "create", "Alice", "--role", "admin", "--team", "data"),
        ("users", "create", "alice", "--role", "root", "--team", "data"),
        ("keys", "create", "alice", "--expires", "1s"),
        ("keys", "rotate", "0123456789abcdef", "--overlap", "30d"),
        ("keys", "revoke", "xyz"),
        ("policies", "set", "p", "--lock", "has space"),
    ):
        result = cli(None, *args)
        assert result.returncode in (2, 125), (args, result.stderr)
        assert "Traceback" not in result.stderr
