"""The audit log and the second factor through a real ``runvoy server`` process: ``runvoy audit verify|export``
as its admin (a viewer refused), and with ``require_totp_for_admin`` the X-Runvoy-TOTP header: admin requests
refused without a code, accepted with the current one, and the same code refused the second time."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from runvoy_core.providers.local.store import LocalStore
from runvoy_core.team.audit import AuditLog, entry_hash
from runvoy_core.team.totp import SecondFactor, code_at
from tests.server.conftest import RUNVOY, RunningServer, launch, new_token, wait_ready

pytest.importorskip("fastapi")


@pytest.fixture
def started() -> Iterator[list[RunningServer]]:
    servers: list[RunningServer] = []
    yield servers
    for running in servers:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def _start(home: Path, servers: list[RunningServer], env: dict[str, str] | None = None) -> RunningServer:
    token = new_token()
    process, seen, lines, reader = launch(home, token=token, env=env)
    try:
        running = wait_ready(process, seen, lines, reader, token)
    except BaseException:
        process.kill()
        process.wait()
        raise
    servers.append(running)
    return running


def cli(
    server: RunningServer, *args: str, token: str | None = None, totp: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNVOY_SERVER", "RUNVOY_TOKEN", "RUNVOY_TOTP")}
    env.update(RUNVOY_SERVER=server.url, RUNVOY_TOKEN=token or server.token or "")
    if totp is not None:
        env["RUNVOY_TOTP"] = totp
    return subprocess.run([RUNVOY, *args], capture_output=True, text=True, timeout=120, env=env, check=False)


def test_audit_verify_and_export_through_a_server(tmp_path: Path, started: list[RunningServer]) -> None:
    home = tmp_path / "server-home"
    home.mkdir()
    server = _start(home, started)
    assert cli(server, "users", "create", "vera", "--role", "viewer", "--team", "data").returncode == 0
    made = cli(server, "keys", "create", "vera", "--json")
    assert made.returncode == 0, made.stderr
    vera = json.loads(made.stdout)["token"]

    verified = cli(server, "audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["entries"] >= 2
    exported = cli(server, "audit", "export", "--since", "1h")
    assert exported.returncode == 0, exported.stderr
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [e["action"] for e in entries][:2] == ["create_user", "create_key"]
    assert all(entry_hash(e) == e["hash"] for e in entries)
    assert entries[-1]["hash"] == report["last_hash"]
    assert vera.split("_", 2)[2] not in exported.stdout  # a key's secret never reaches the log

    refused = cli(server, "audit", "verify", token=vera)
    assert refused.returncode == 77 and "Traceback" not in refused.stderr

    # the store itself, as whoever holds its credentials sees it: the same chain, the refusal in it
    store = LocalStore(home)
    mine = AuditLog(store).verify()
    assert mine.ok and mine.entries == report["entries"] + 1
    last = list(AuditLog(store).entries())[-1]
    assert (last.actor, last.outcome, last.action) == ("vera", "denied", "audit_verify")
    store.close()


def test_admin_requests_need_a_fresh_totp_code(tmp_path: Path, started: list[RunningServer]) -> None:
    home = tmp_path / "server-home"
    home.mkdir()
    server = _start(home, started, env={"RUNVOY_SERVE__REQUIRE_TOTP_FOR_ADMIN": "true"})
    store = LocalStore(home)
    admin = httpx.get(f"{server.url}/v1/whoami", headers=server.headers, timeout=60).json()["name"]
    secret = SecondFactor(store).enroll(admin).secret
    store.close()

    def create(name: str, code: str | None, headers: dict[str, str] | None = None) -> httpx.Response:
        headers = dict(headers or server.headers)
        if code is not None:
            headers["X-Runvoy-TOTP"] = code
        body = {"name": name, "role": "viewer", "team": "data"}
        return httpx.post(f"{server.url}/v1/users", json=body, headers=headers, timeout=60)

    refused = create("nocode", None)
    assert refused.status_code == 403, refused.text
    code = code_at(secret, datetime.now(UTC))
    accepted = create("withcode", code)
    assert accepted.status_code in (200, 201), accepted.text
    # one CLI command sends several requests with one code: the key that used it may use it again...
    again = create("again", code)
    assert again.status_code in (200, 201), again.text
    made = httpx.post(
        f"{server.url}/v1/keys",
        json={"user": admin, "name": "second"},
        headers={**server.headers, "X-Runvoy-TOTP": code},
        timeout=60,
    )
    assert made.status_code in (200, 201), made.text
    # ...but the same code from any other key is a replay
    other = {"Authorization": f"Bearer {made.json()['token']}"}
    replayed = create("replayed", code, other)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"]["code"] == "invalidtoken"
    assert code not in replayed.text


def test_the_cli_sends_the_code_of_runvoy_totp(tmp_path: Path, started: list[RunningServer]) -> None:
    home = tmp_path / "server-home"
    home.mkdir()
    server = _start(home, started, env={"RUNVOY_SERVE__REQUIRE_TOTP_FOR_ADMIN": "true"})
    store = LocalStore(home)
    secret = SecondFactor(store).enroll("admin").secret
    store.close()

    refused = cli(server, "users", "create", "una", "--role", "viewer", "--team", "data")
    assert refused.returncode == 77, refused.stderr
    assert "second factor" in refused.stderr.lower() or "totp" in refused.stderr.lower(), refused.stderr
    bad = cli(server, "users", "list", totp="12x456")
    assert bad.returncode == 125 and "RUNVOY_TOTP" in bad.stderr and "12x456" not in bad.stderr, bad.stderr
    code = code_at(secret, datetime.now(UTC))
    made = cli(server, "users", "create", "una", "--role", "viewer", "--team", "data", totp=code)
    assert made.returncode == 0, made.stderr
    key = cli(server, "keys", "create", "una", "--json", totp=code)  # the same code, the same key
    assert key.returncode == 0, key.stderr
    assert code not in made.stdout + made.stderr + key.stderr
