"""Issue 15's "Done means", as a stranger does it: `runvoy server` in one terminal; in another `runvoy login`
then `runvoy run "echo hello"` through it; an admin creates a teammate with a key; the teammate's runs show in
the admin's `runvoy list`, with the audit trail of both. Only the console script, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from runvoy_core.testing.waiting import DEADLINE
from tests.server.conftest import RUNVOY, RunningServer, StartServer


def _client(tmp_path: Path, name: str, server: RunningServer) -> dict[str, str]:
    """The environment of one person's terminal: their own config file (and token file beside it), their own
    local home, and the server's URL in the config as `runvoy login` users write it."""
    where = tmp_path / name
    where.mkdir()
    config = where / "config.toml"
    config.write_text(f'server = "{server.url}"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("RUNVOY_TOKEN", "RUNVOY_SERVER")}
    env.update(RUNVOY_CONFIG=str(config), RUNVOY_HOME=str(where / "home"), RUNVOY_WARM="0")
    return env


def _runvoy(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNVOY, *args], capture_output=True, text=True, env=env, input=stdin, timeout=DEADLINE * 2
    )


def test_a_team_shares_one_server_from_login_to_audit(start_server: StartServer, tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    home.mkdir()
    server = start_server(home=home)  # no RUNVOY_BOOTSTRAP_TOKEN: the first start prints the admin key
    assert server.printed_token is not None
    admin = _client(tmp_path, "admin", server)

    login = _runvoy(admin, "login", stdin=server.printed_token + "\n")
    assert login.returncode == 0, login.stderr
    assert server.printed_token not in login.stdout + login.stderr
    token_file = Path(admin["RUNVOY_CONFIG"]).parent / "tokens.json"
    assert token_file.stat().st_mode & 0o777 == 0o600

    hello = _runvoy(admin, "run", "echo hello")
    assert (hello.returncode, hello.stdout) == (0, "hello\n"), hello.stderr

    created = _runvoy(admin, "users", "create", "alice", "--role", "operator", "--team", "data", "--json")
    assert created.returncode == 0, created.stderr
    key = _runvoy(admin, "keys", "create", "alice", "--name", "laptop", "--json")
    assert key.returncode == 0, key.stderr
    alice_token = json.loads(key.stdout)["token"]

    alice = _client(tmp_path, "alice", server)
    assert _runvoy(alice, "login", stdin=alice_token + "\n").returncode == 0
    hers = _runvoy(alice, "run", "--detach", "echo from alice")
    assert hers.returncode == 0, hers.stderr
    her_run = hers.stdout.strip()
    waited = _runvoy(alice, "wait", her_run)
    assert waited.returncode == 0, waited.stderr
    assert _runvoy(alice, "logs", her_run).stdout == "from alice\n"

    listed = _runvoy(admin, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = {run["id"]: run for run in json.loads(listed.stdout)}
    assert runs[her_run]["user"] == "alice"
    assert {run["user"] for run in runs.values()} == {"admin", "alice"}
    # the teammate sees the runs of team data only: the admin's run is another team's
    mine = json.loads(_runvoy(alice, "list", "--json").stdout)
    assert [run["id"] for run in mine] == [her_run]

    exported = _runvoy(admin, "audit", "export", "--format", "jsonl")
    assert exported.returncode == 0, exported.stderr
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    by_actor = {(entry["actor"], entry["action"]) for entry in entries}
    assert {("admin", "run"), ("admin", "create_user"), ("admin", "create_key")} <= by_actor
    assert ("alice", "submit") in by_actor
    assert alice_token not in exported.stdout and server.printed_token not in exported.stdout
    verified = _runvoy(admin, "audit", "verify", "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
