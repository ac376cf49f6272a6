"""Two server processes on one store (decision 1518): the local provider's SQLite home here, AWS on moto in
providers/aws/tests/test_aws_server_replicas.py. A run submitted through one replica is followed, killed and
listed through the other; an attached run watched by one is stopped by a kill sent to the other."""

from __future__ import annotations

import json
import os
import select
import subprocess
from pathlib import Path
from typing import Any

from runvoy_core import Runvoy
from runvoy_core.models import Status
from runvoy_core.testing.waiting import DEADLINE
from tests.server.conftest import RUNVOY, RunningServer, StartServer, new_token


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    assert server.token is not None
    env = {**os.environ, "RUNVOY_SERVER": server.url, "RUNVOY_TOKEN": server.token}
    return subprocess.run([RUNVOY, *args], capture_output=True, text=True, env=env, timeout=DEADLINE * 2)


def start(server: RunningServer, *args: str) -> subprocess.Popen[str]:
    assert server.token is not None
    env = {**os.environ, "RUNVOY_SERVER": server.url, "RUNVOY_TOKEN": server.token}
    return subprocess.Popen(
        [RUNVOY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], DEADLINE)
    assert ready, f"no output within {DEADLINE}s"
    return proc.stdout.readline()


def status(server: RunningServer, execution_id: str) -> dict[str, Any]:
    result = cli(server, "status", "--json", execution_id)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def check_replicas(first: RunningServer, second: RunningServer, provider: str) -> None:
    """What two replicas on one store must agree on, through the CLI and the Python API."""
    assert first.url != second.url
    # submitted on the first, followed, killed and listed on the second
    started = cli(first, "run", "--detach", "echo up; while :; do sleep 0.05; done")
    assert started.returncode == 0, started.stderr
    execution_id = started.stdout.strip()
    follower = start(second, "logs", "--follow", execution_id)
    try:
        assert read_line(follower) == "up\n"
        killed = cli(second, "kill", "--json", execution_id)
        assert killed.returncode == 0, killed.stderr
        assert json.loads(killed.stdout)["status"] == "CANCELLED"
        assert follower.wait(timeout=DEADLINE) == 0
    finally:
        follower.kill()
        follower.communicate()
    listed = json.loads(cli(second, "list", "--json").stdout)
    assert {(e["id"], e["status"]) for e in listed} >= {(execution_id, "CANCELLED")}
    record = status(first, execution_id)
    assert (record["status"], record["provider"]) == ("CANCELLED", provider)

    # an attached run watched by the first replica, stopped by a kill sent to the second: the first one's
    # client sees the end and exits with the command's code
    attached = start(first, "run", 'echo "id=$RUNVOY_EXECUTION_ID"; while :; do sleep 0.05; done')
    try:
        line = read_line(attached)
        assert line.startswith("id="), line
        watched = line.strip().removeprefix("id=")
        assert cli(second, "kill", "--no-wait", watched).returncode == 0
        _, err = attached.communicate(timeout=DEADLINE)
        assert attached.returncode == status(second, watched)["exit_code"] == 143, err
        assert "CANCELLED" in err
    finally:
        attached.kill()
        attached.communicate()

    # the Python API on each replica sees the other's runs at once
    with (
        Runvoy(server=first.url, token=first.token) as one,
        Runvoy(server=second.url, token=second.token) as two,
    ):
        done = one.run("echo from-one; exit 6")
        assert two.get(done.id).exit_code == 6
        assert [e.message for e in two.logs(done.id)] == ["from-one"]
        later = two.submit("exit 0")
        assert one.wait(later.id, timeout=DEADLINE).status == Status.SUCCEEDED
        assert {e.id for e in one.list(limit=100)} == {e.id for e in two.list(limit=100)}


def test_two_servers_on_one_local_home(start_server: StartServer, tmp_path: Path) -> None:
    home = tmp_path / "shared-home"
    home.mkdir()
    token = new_token()
    first = start_server(home=home, token=token)
    second = start_server(home=home, token=token)
    check_replicas(first, second, "local")


class Balancer:
    """A TCP load balancer of one backend at a time (``target``), as a deployment puts in front of replicas:
    switching it sends new connections to another replica; connections already open stay where they are."""

    def __init__(self, target: str) -> None:
        import socket
        import threading

        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading
        from urllib.parse import urlsplit

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            where = urlsplit(self.target)
            try:
                upstream = socket.create_connection((where.hostname, where.port))
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: Any, sink: Any) -> None:
        import contextlib
        import socket

        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


def test_an_attached_run_survives_the_loss_of_its_replica(start_server: StartServer, tmp_path: Path) -> None:
    import signal

    from runvoy_core.testing.waiting import gate

    home = tmp_path / "shared-home"
    home.mkdir()
    token = new_token()
    first = start_server(home=home, token=token)
    second = start_server(home=home, token=token)
    balancer = Balancer(first.url)
    release = tmp_path / "release"
    env = {**os.environ, "RUNVOY_SERVER": balancer.url, "RUNVOY_TOKEN": token}
    attached = subprocess.Popen(
        [RUNVOY, "run", f"echo first; echo err >&2; {gate(release)}; echo second; exit 7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert read_line(attached) == "first\n"
        # the replica watching the run dies; the balancer sends the next connection to the other one
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=DEADLINE)
        balancer.target = second.url
        release.touch()
        assert read_line(attached) == "second\n"
        out, err = attached.communicate(timeout=DEADLINE)
        assert attached.returncode == 7, err
        assert out == "" and err.startswith("err\n") and "FAILED (exit 7)" in err, (out, err)
    finally:
        attached.kill()
        attached.communicate()
        balancer.close()
