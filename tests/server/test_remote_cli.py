"""The CLI through a runvoy server (decision 1517): the same commands give the same output and exit codes as
on a provider of this machine — attached and detached runs, status, logs, list, kill, wait, --json, errors —
and Ctrl-C stops a run through the server as it stops a local one."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.testing.waiting import DEADLINE, gate, wait_for
from tests.server.conftest import RUNVOY, RunningServer, StartServer, new_token

ID = re.compile(r"\b[0-9a-f]{12}\b")


@pytest.fixture
def remote(start_server: StartServer, tmp_path: Path) -> RunningServer:
    """A server on a home of its own: the test's RUNVOY_HOME stays the local side of each comparison."""
    home = tmp_path / "server-home"
    home.mkdir()
    return start_server(home=home, token=new_token())


Cli = Callable[..., subprocess.CompletedProcess[str]]


def _env(server: RunningServer | None, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    if server is not None:
        assert server.token is not None
        env.update(RUNVOY_SERVER=server.url, RUNVOY_TOKEN=server.token)
    env.update(extra)
    return env


def cli(
    server: RunningServer | None, *args: str, stdin: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNVOY, *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
        env=_env(server, **extra),
        input=stdin,
    )


def start(server: RunningServer | None, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [RUNVOY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(server)
    )


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], DEADLINE)
    assert ready, f"no output within {DEADLINE}s"
    return proc.stdout.readline()


def same(*args: str, remote: RunningServer, normalize: bool = False) -> tuple[Any, Any]:
    """The command locally and through the server: the same exit code and the same stdout."""
    here, there = cli(None, *args), cli(remote, *args)
    assert "Traceback" not in here.stderr + there.stderr, there.stderr
    assert here.returncode == there.returncode, (here.stderr, there.stderr)
    if normalize:
        assert ID.sub("ID", here.stdout) == ID.sub("ID", there.stdout)
    else:
        assert here.stdout == there.stdout, (here.stdout, there.stdout)
    return here, there


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_attached_runs_stream_and_exit_with_the_command_s_code(remote: RunningServer) -> None:
    here, there = same("run", "echo out; echo err >&2; exit 3", remote=remote)
    assert (there.returncode, there.stdout) == (3, "out\n")
    for result in (here, there):
        assert result.stderr.startswith("err\n") and "FAILED (exit 3)" in result.stderr
    same("run", "--quiet", "--", "printf", "%s\\n", "a b", "c", remote=remote)
    here, there = (
        cli(None, "run", "--json", "--label", "k=v", "echo hi"),
        cli(remote, "run", "--json", "--label", "k=v", "echo hi"),
    )
    local, through = _json(here), _json(there)
    assert (
        (through["status"], through["exit_code"]) == (local["status"], local["exit_code"]) == ("SUCCEEDED", 0)
    )
    assert through["request"]["labels"]["k"] == "v" and there.stderr.startswith("hi\n")
    assert sorted(local) == sorted(through), "the JSON of a run has the same fields through a server"


def test_output_is_streamed_while_the_command_runs(remote: RunningServer, tmp_path: Path) -> None:
    release = tmp_path / "release"
    proc = start(remote, "run", f"echo first; {gate(release)}; echo second")
    try:
        assert read_line(proc) == "first\n"
        assert proc.poll() is None, "the first line came only at the end"
        release.touch()
        assert read_line(proc) == "second\n"
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        proc.kill()
        proc.communicate()


def test_detached_runs_status_wait_logs_list(remote: RunningServer) -> None:
    ids = {}
    for side, server in (("local", None), ("remote", remote)):
        started = cli(server, "run", "--detach", "echo line-1; echo line-2 >&2; exit 4")
        assert started.returncode == 0, started.stderr
        ids[side] = started.stdout.strip()
        assert ID.fullmatch(ids[side])
    results = {}
    for side, server in (("local", None), ("remote", remote)):
        execution_id = ids[side]
        results[side] = {
            "wait": cli(server, "wait", execution_id[:8]),
            "logs": cli(server, "logs", execution_id),
            "logs_json": cli(server, "logs", "--json", execution_id),
            "tail": cli(server, "logs", "--tail", "1", execution_id),
            "status": cli(server, "status", "--json", execution_id),
            "list": cli(server, "list", "--json"),
            "quiet_wait": cli(server, "wait", "-q", execution_id),
        }
    local, through = results["local"], results["remote"]
    for name in local:
        assert local[name].returncode == through[name].returncode, (name, through[name].stderr)
    assert through["wait"].returncode == through["quiet_wait"].returncode == 4
    # the summary line: the same words (durations and costs may differ by a few milliseconds)
    for side in ("local", "remote"):
        assert results[side]["wait"].stdout.startswith(f"{ids[side]} FAILED (exit 4) in "), results[side][
            "wait"
        ].stdout
    assert through["logs"].stdout == local["logs"].stdout == "line-1\n"
    assert through["logs"].stderr == local["logs"].stderr == "line-2\n"
    assert through["tail"].stdout + through["tail"].stderr == "line-2\n"
    assert [e["message"] for e in map(json.loads, through["logs_json"].stdout.splitlines())] == [
        "line-1",
        "line-2",
    ]
    status = _json(through["status"])
    assert (status["id"], status["status"], status["exit_code"]) == (ids["remote"], "FAILED", 4)
    assert [e["event"] for e in status["events"]] == [e["event"] for e in _json(local["status"])["events"]]
    assert [e["id"] for e in _json(through["list"])] == [ids["remote"]]


def test_follow_logs_through_the_server(remote: RunningServer, tmp_path: Path) -> None:
    release = tmp_path / "release"
    started = cli(remote, "run", "--detach", f"echo before; {gate(release)}; echo after")
    execution_id = started.stdout.strip()
    follower = start(remote, "logs", "--follow", execution_id)
    try:
        assert read_line(follower) == "before\n"
        release.touch()
        assert read_line(follower) == "after\n"
        assert follower.wait(timeout=DEADLINE) == 0
    finally:
        follower.kill()
        follower.communicate()


def test_kill_through_the_server(remote: RunningServer) -> None:
    for server in (None, remote):
        execution_id = cli(server, "run", "--detach", "echo up; sleep 300").stdout.strip()
        # the command runs (its shell will get the SIGTERM) before it is killed
        wait_for(lambda s=server, e=execution_id: cli(s, "logs", e).stdout == "up\n", what="its first line")
        killed = cli(server, "kill", "--json", execution_id)
        record = _json(killed)
        assert (record["status"], record["exit_code"]) == ("CANCELLED", 143), killed.stderr
        assert cli(server, "wait", "-q", execution_id).returncode == 143
        again = cli(server, "kill", execution_id)
        assert again.returncode == 0 and "had already ended" in again.stderr


def test_errors_have_the_same_message_and_exit_code(remote: RunningServer, tmp_path: Path) -> None:
    def both(*args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
        here, there = cli(None, *args), cli(remote, *args)
        assert here.returncode == there.returncode, (here.stderr, there.stderr)
        first = [line for line in here.stderr.splitlines() if line.startswith(("error:", "hint:"))]
        second = [line for line in there.stderr.splitlines() if line.startswith(("error:", "hint:"))]
        assert first == second and first, (here.stderr, there.stderr)
        return here, there

    assert both("status", "0000")[1].returncode == 125
    assert both("logs", "zzz")[1].returncode == 125
    both("run", "--memory", "lots", "true")
    assert both("run", "--lock-timeout", "1m", "true")[1].returncode == 125
    # a held lock: exit 75 on both sides, each against its own lock register
    releases = []
    for side, server in (("local", None), ("remote", remote)):
        release = tmp_path / f"release-{side}"
        releases.append(release)
        holder = cli(server, "run", "--detach", "--lock", "deploy", gate(release))
        assert holder.returncode == 0, holder.stderr
    held_here, held_there = (
        cli(None, "run", "--lock", "deploy", "true"),
        cli(remote, "run", "--lock", "deploy", "true"),
    )
    assert held_here.returncode == held_there.returncode == 75, held_there.stderr
    assert "error:" in held_there.stderr and "Traceback" not in held_there.stderr
    for release in releases:
        release.touch()


def test_refusals_by_the_server(remote: RunningServer, tmp_path: Path) -> None:
    bad = cli(remote, "list", RUNVOY_TOKEN=new_token())
    assert bad.returncode == 77 and "error:" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli(None, "list", RUNVOY_SERVER=remote.url, RUNVOY_CONFIG=str(tmp_path / "none.toml"))
    assert missing.returncode == 77 and "runvoy login" in missing.stderr
    closed = cli(None, "list", RUNVOY_SERVER="http://127.0.0.1:9", RUNVOY_TOKEN=new_token())
    assert closed.returncode == 125 and "cannot reach the runvoy server" in closed.stderr
    assert "Traceback" not in closed.stderr
    other = cli(remote, "run", "--provider", "aws", "true")
    assert other.returncode == 125 and "runs on provider 'local'" in other.stderr


def _run_id(proc: subprocess.Popen[str]) -> str:
    line = read_line(proc)
    assert line.startswith("id="), line
    return line.strip().removeprefix("id=")


def test_ctrl_c_once_stops_the_run_through_the_server(remote: RunningServer) -> None:
    proc = start(remote, "run", 'echo "id=$RUNVOY_EXECUTION_ID"; sleep 300')
    execution_id = _run_id(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=DEADLINE)
    assert "stopping" in err and "Traceback" not in err
    final = _json(cli(remote, "status", "--json", execution_id))
    assert final["status"] == "CANCELLED"
    assert proc.returncode == final["exit_code"] == 143


def test_ctrl_c_twice_kills_the_run_through_the_server(remote: RunningServer) -> None:
    command = "trap 'echo got-term' TERM; echo \"id=$RUNVOY_EXECUTION_ID\"; while :; do sleep 0.05; done"
    proc = start(remote, "run", "--stop-grace", "60s", command)
    execution_id = _run_id(proc)
    proc.send_signal(signal.SIGINT)
    assert read_line(proc) == "got-term\n"
    assert proc.poll() is None, "a graceful stop must not end a command that survives SIGTERM"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=DEADLINE)
    assert "killing" in err and "Traceback" not in err
    final = _json(cli(remote, "status", "--json", execution_id))
    assert final["status"] == "CANCELLED"
    assert proc.returncode == final["exit_code"] == 137


def test_a_long_wait_stays_within_the_server_s_request_timeout(
    start_server: StartServer, tmp_path: Path
) -> None:
    home = tmp_path / "short-home"
    home.mkdir()
    server = start_server(home=home, token=new_token(), env={"RUNVOY_SERVE__REQUEST_TIMEOUT": "1s"})
    release = tmp_path / "release"
    execution_id = cli(server, "run", "--detach", gate(release)).stdout.strip()
    # several bounded waits, none cut by the server's 1 s timeout (504): the CLI's own timeout ends it
    waited = cli(server, "wait", "--timeout", "3s", execution_id)
    assert waited.returncode == 124, waited.stderr
    assert "still RUNNING" in waited.stderr or "still STARTING" in waited.stderr
    release.touch()
    assert cli(server, "wait", execution_id).returncode == 0


def test_locks_cost_budget_providers_through_the_server(remote: RunningServer, tmp_path: Path) -> None:
    for args in (
        ("locks", "list", "--json"),
        ("budget", "list", "--json"),
        ("cost", "estimate", "--provider", "local", "--duration", "1h", "--json"),
    ):
        same(*args, remote=remote)
    budget = ("budget", "set", "monthly", "--amount", "50", "--scope", "provider=local")
    same(*budget, remote=remote, normalize=True)
    shown_here, shown_there = (
        cli(None, "budget", "show", "monthly", "--json"),
        cli(remote, "budget", "show", "monthly", "--json"),
    )
    assert json.loads(shown_here.stdout)["amount"] == json.loads(shown_there.stdout)["amount"]
    same("budget", "remove", "monthly", remote=remote)
    providers = cli(remote, "providers", "--json")
    assert providers.returncode == 0 and "local" in providers.stdout, providers.stderr
    release = tmp_path / "release"
    holder = cli(remote, "run", "--detach", "--lock", "nightly", gate(release)).stdout.strip()
    shown = _json(cli(remote, "locks", "status", "nightly", "--json"))
    assert holder in json.dumps(shown)
    held = cli(remote, "locks", "release", "nightly")
    assert held.returncode == 75 and "Traceback" not in held.stderr, held.stderr
    release.touch()
    assert cli(remote, "wait", "-q", holder).returncode == 0
    assert cli(remote, "locks", "release", "nightly").returncode == 0
    report = cli(remote, "cost", "report", "--json")
    assert report.returncode == 0, report.stderr


def test_streams_hold_no_thread_of_the_server_s_pool(start_server: StartServer, tmp_path: Path) -> None:
    from runvoy_core.remote.client import Client

    home = tmp_path / "busy-home"
    home.mkdir()
    limits = {"RUNVOY_SERVE__RATE": "1000", "RUNVOY_SERVE__BURST": "1000"}
    server = start_server(home=home, token=new_token(), env=limits)
    release = tmp_path / "release"
    execution_id = cli(server, "run", "--detach", f"echo up; {gate(release)}").stdout.strip()
    client = Client(server.url, server.token)
    # more followers than the 40 threads of the server's pool, each synchronised on its first event
    streams = []
    for _ in range(45):
        stream = client.stream("GET", f"/v1/executions/{execution_id}/logs/stream", query={"follow": True})
        assert next(stream).name == "log"
        streams.append(stream)
    assert client.request("GET", "/v1/info", timeout=DEADLINE)["provider"] == "local"
    release.touch()
    for stream in streams:
        assert [event.name for event in stream] == ["end"]
    client.close()


def test_ctrl_c_while_waiting_for_a_lock_gives_up_the_wait(remote: RunningServer, tmp_path: Path) -> None:
    release = tmp_path / "release"
    holder = cli(remote, "run", "--detach", "--lock", "etl", gate(release)).stdout.strip()
    proc = start(remote, "run", "--lock", "etl", "--on-conflict", "queue", "echo should-not-run")
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], DEADLINE)
    assert ready and "waiting for lock 'etl'" in proc.stderr.readline()
    queued = _json(cli(remote, "locks", "status", "etl", "--json"))["queue"]
    assert len(queued) == 1, queued
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 130 and "Traceback" not in err, err
    # the server gave up the wait (as a local Ctrl-C does): its place in the line is gone, no run follows
    wait_for(
        lambda: not _json(cli(remote, "locks", "status", "etl", "--json"))["queue"],
        what="the interrupted run to leave the lock's queue",
    )
    release.touch()
    assert cli(remote, "wait", "-q", holder).returncode == 0
    commands = [e["request"]["command"] for e in _json(cli(remote, "list", "--json"))]
    assert "echo should-not-run" not in commands


def test_playbooks_through_the_server(remote: RunningServer, tmp_path: Path) -> None:
    book = tmp_path / "nightly.yaml"
    book.write_text("steps:\n  - run: echo step-one\n  - run: echo step-two; exit 5\n")
    here, there = same("run", "-f", str(book), remote=remote)
    assert there.returncode == 5 and "step-one\n" in there.stdout and "step-two\n" in there.stdout
    local, through = (
        _json(cli(None, "run", "-d", "--json", "-f", str(book))),
        _json(cli(remote, "run", "-d", "--json", "-f", str(book))),
    )
    assert through["request"]["labels"]["playbook"] == local["request"]["labels"]["playbook"] == "nightly"
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 3\n")
    here, there = cli(None, "run", "-f", str(bad)), cli(remote, "run", "-f", str(bad))
    assert here.returncode == there.returncode != 0 and "Traceback" not in there.stderr
    assert [x for x in here.stderr.splitlines() if x.startswith("error:")] == [
        x for x in there.stderr.splitlines() if x.startswith("error:")
    ]
