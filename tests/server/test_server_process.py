"""``runvoy server`` as a real process: the ready line, the bootstrap key printed once and never again (also
with two servers starting at once on one store), the key from RUNVOY_BOOTSTRAP_TOKEN, graceful stops, and
``runvoy health`` against it (decision 1515)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from runvoy_core.providers.local.store import LocalStore
from runvoy_core.team.keys import KeyRing

from .conftest import BOOTSTRAP, READY, RUNVOY, RunningServer, StartServer, launch, new_token, wait_ready


def get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def authenticated(server: RunningServer) -> bool:
    status, _ = get(f"{server.url}/v1/openapi.json")
    assert status == 200
    status, body = get(f"{server.url}/readyz")
    assert status == 200, body
    # any endpoint behind authentication: a 401 would mean the key is not the admin's
    status, body = get(f"{server.url}/v1/no-such-endpoint", server.token)
    return status == 404


def test_the_first_start_prints_the_bootstrap_key_once_then_the_ready_line(
    start_server: StartServer, runvoy_home: Path
) -> None:
    first = start_server()
    assert first.printed_token is not None
    bootstrap = [i for i, line in enumerate(first.lines) if BOOTSTRAP.match(line)]
    ready = [i for i, line in enumerate(first.lines) if READY.match(line)]
    assert len(bootstrap) == 1 and len(ready) == 1 and bootstrap[0] < ready[0]
    assert authenticated(first)
    assert first.stop() == 0
    again = start_server()
    assert again.printed_token is None
    assert not any(BOOTSTRAP.match(line) for line in again.lines)
    again.token = first.printed_token
    assert authenticated(again)  # the first key still works; no second admin key was made
    keys = KeyRing(LocalStore(runvoy_home)).list()
    assert [(k.user, k.name) for k in keys] == [("admin", "bootstrap")]


def test_a_bootstrap_token_from_the_environment_is_stored_and_never_printed(
    start_server: StartServer,
) -> None:
    token = new_token()
    running = start_server(token=token)
    assert running.printed_token is None
    assert all(token not in line and token.split("_", 2)[2] not in line for line in running.lines)
    assert authenticated(running)
    status, body = get(f"{running.url}/v1/no-such-endpoint", new_token())
    assert status == 401 and body["error"]["code"] == "invalidtoken"  # type: ignore[index]


def test_two_servers_starting_at_once_on_one_store_bootstrap_once(runvoy_home: Path) -> None:
    launched = [launch(runvoy_home) for _ in range(2)]
    servers = []
    try:
        servers = [wait_ready(*started, None) for started in launched]
        printed = [s.printed_token for s in servers if s.printed_token is not None]
        assert len(printed) == 1
        for running in servers:
            running.token = printed[0]
            assert authenticated(running)  # the one key works on both
        assert len(KeyRing(LocalStore(runvoy_home)).list()) == 1
    finally:
        for process, *_ in launched:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, *_ in launched:
            assert process.wait(timeout=60) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_server_cleanly(server: RunningServer, sig: int) -> None:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    assert server.stop(sig) == 0
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=10):
        pass
    assert not any("Traceback" in line for line in server.lines)


def test_runvoy_health_reads_readyz(server: RunningServer, runvoy_home: Path) -> None:
    done = subprocess.run(
        [RUNVOY, "health", "--server", server.url, "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "ready" and report["server"] == server.url
    assert set(report["checks"]) == {"store", "provider", "locks"}
    table = subprocess.run(
        [RUNVOY, "health", "--server", server.url], capture_output=True, text=True, timeout=120
    )
    assert table.returncode == 0 and "store" in table.stdout and "ok" in table.stdout


def test_runvoy_health_without_a_server_is_a_clean_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on: bound here, never listened on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        done = subprocess.run(
            [RUNVOY, "health", "--server", f"http://127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 125
    assert "error: no answer from" in done.stderr and "Traceback" not in done.stderr
    assert "runvoy health" in done.stderr  # the hint


def test_runvoy_server_check_reports_readiness_without_serving() -> None:
    done = subprocess.run([RUNVOY, "server", "--check"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "store" in done.stdout and "locks" in done.stdout and "listening" not in done.stderr


def test_a_malformed_bootstrap_token_is_refused_without_repeating_it(runvoy_home: Path) -> None:
    secret = "not-a-key-but-maybe-a-secret"
    process, _, lines, reader = launch(runvoy_home, token=secret)
    assert process.wait(timeout=120) == 125
    reader.join(timeout=60)
    text = "\n".join(lines)
    assert "RUNVOY_BOOTSTRAP_TOKEN" in text and secret not in text and "Traceback" not in text


def test_serve_settings_reach_the_running_server(start_server: StartServer) -> None:
    running = start_server(token=new_token(), env={"RUNVOY_SERVE__BODY_LIMIT": "1KiB"})
    request = urllib.request.Request(
        f"{running.url}/v1/executions", data=b"{" + b" " * 2048 + b"}", headers=running.headers, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413
    assert json.loads(refused.value.read())["error"]["code"] == "requesttoolarge"


def test_sigterm_with_a_stream_open_still_stops_cleanly(server: RunningServer) -> None:
    import http.client

    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    connection.request(
        "POST",
        "/v1/runs",
        body=json.dumps({"command": "sleep 300"}),
        headers={**server.headers, "Content-Type": "application/json"},
    )
    answer = connection.getresponse()
    assert answer.status == 200
    while (line := answer.readline()) and not line.startswith(b"event: started"):
        pass
    data = answer.readline()
    assert line.startswith(b"event: started") and data.startswith(b"data: ")
    execution_id = json.loads(data.removeprefix(b"data: "))["id"]
    try:
        assert server.stop(signal.SIGTERM, timeout=120) == 0
        try:
            answer.read()  # the stream ends with the server: it does not hang
        except http.client.IncompleteRead:
            pass  # cut when the grace period ended, as a stream to a stopped server is
    finally:
        connection.close()
        # the run itself goes on without the server (a detached supervisor): stop it here
        subprocess.run(
            [RUNVOY, "kill", "--force", execution_id], capture_output=True, timeout=120, check=True
        )
