"""The real `runvoy` console script in a subprocess: exit codes, live streaming, Ctrl-C, and SIGKILL of an
attached CLI (nothing is lost: the record converges on the next `status`, the logs are complete)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.testing.waiting import DEADLINE, gate, wait_for
from tests.conftest import served_warm

Script = Callable[..., subprocess.CompletedProcess[str]]
CleanError = Callable[..., None]


@pytest.fixture(autouse=True, params=["cold", "warm"])
def _mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test here runs twice: the command started cold, and served by a warm process (decision 1414),
    which must not change an exit code, a line of output or the handling of a signal."""
    uses_cli = {"script", "runvoy_bin"} & set(request.fixturenames)
    if request.param == "cold" or not uses_cli:
        yield
        return
    trace = request.getfixturevalue("warm_process")
    yield
    assert served_warm(trace), "no command of this test went through the warm process"


def _start(runvoy_bin: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [runvoy_bin, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def _read_line(proc: subprocess.Popen[str], timeout: float = DEADLINE) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no output within {timeout}s"
    return proc.stdout.readline()


def _status(script: Script, execution_id: str) -> dict[str, Any]:
    result = script("status", execution_id, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_exit_codes_and_streams(script: Script, clean_error: CleanError) -> None:
    hello = script("run", "echo hello")
    assert (hello.returncode, hello.stdout) == (0, "hello\n")
    mixed = script("run", "echo out; echo err >&2; exit 3")
    assert mixed.returncode == 3 and mixed.stdout == "out\n"
    assert mixed.stderr.startswith("err\n") and "FAILED (exit 3)" in mixed.stderr
    clean_error(script("run", "--memory", "lots", "true"), 125, "--memory")
    clean_error(script("status", "0000"), 125, "no execution '0000'")
    clean_error(script("run", "--provider", "nosuch", "true"), 125, "unknown provider")


def test_output_is_streamed_while_the_command_runs(runvoy_bin: str, tmp_path: Path) -> None:
    release = tmp_path / "release"
    # the command cannot end before the test has read the first line
    proc = _start(runvoy_bin, "run", f"echo first; {gate(release)}; echo second")
    try:
        assert _read_line(proc) == "first\n"
        assert proc.poll() is None, "the first line came only at the end"
        release.touch()
        assert _read_line(proc) == "second\n"
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        proc.kill()
        proc.communicate()


def test_sigkill_of_an_attached_cli_loses_nothing(runvoy_bin: str, script: Script, tmp_path: Path) -> None:
    release = tmp_path / "release"
    # the command outlives its watcher: it ends only once the test has killed the CLI
    proc = _start(runvoy_bin, "run", f'echo "id=$RUNVOY_EXECUTION_ID"; {gate(release)}; echo end; exit 7')
    line = _read_line(proc)
    execution_id = line.strip().removeprefix("id=")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=DEADLINE)
    assert proc.returncode == -signal.SIGKILL
    # the dead watcher never wrote the end: the stored record is still active...
    stored = json.loads(script("list", "--no-refresh", "--json").stdout)
    assert [e["id"] for e in stored] == [execution_id]
    assert stored[0]["status"] in ("STARTING", "RUNNING")
    release.touch()
    # ...and the next `status` converges it to the real outcome once the command has ended
    final = wait_for(
        lambda: (data := _status(script, execution_id))["status"] not in ("STARTING", "RUNNING") and data,
        what=f"{execution_id} to converge",
        interval=0.2,
    )
    assert (final["status"], final["exit_code"]) == ("FAILED", 7)
    assert final["finished_at"] is not None and [e["event"] for e in final["events"]][-1] == "finished"
    logs = script("logs", execution_id)
    assert logs.stdout == f"id={execution_id}\nend\n"
    assert script("wait", execution_id, "-q").returncode == 7


def test_ctrl_c_once_stops_gracefully(runvoy_bin: str, script: Script) -> None:
    proc = _start(runvoy_bin, "run", 'echo "id=$RUNVOY_EXECUTION_ID"; sleep 300')
    execution_id = _read_line(proc).strip().removeprefix("id=")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=DEADLINE)
    assert "stopping" in err and "Traceback" not in err
    final = _status(script, execution_id)
    assert final["status"] == "CANCELLED"
    assert proc.returncode == final["exit_code"] == 143  # 128 + SIGTERM, as a shell reports it


def test_ctrl_c_twice_kills(runvoy_bin: str, script: Script) -> None:
    # the command survives SIGTERM (a killed sleep only ends one turn of the loop) and says it got it, so
    # the test knows the graceful stop landed; only the second Ctrl-C's SIGKILL ends it
    command = "trap 'echo got-term' TERM; echo \"id=$RUNVOY_EXECUTION_ID\"; while :; do sleep 0.05; done"
    proc = _start(runvoy_bin, "run", "--stop-grace", "60s", command)
    execution_id = _read_line(proc).strip().removeprefix("id=")
    proc.send_signal(signal.SIGINT)
    assert _read_line(proc) == "got-term\n"
    assert proc.poll() is None, "a graceful stop must not end a command that survives SIGTERM"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=DEADLINE)
    assert "killing" in err
    final = _status(script, execution_id)
    assert final["status"] == "CANCELLED"
    assert proc.returncode == final["exit_code"] == 137  # 128 + SIGKILL


def test_a_closed_output_pipe_stops_the_run_like_a_pipeline(runvoy_bin: str, script: Script) -> None:
    done = subprocess.run(
        ["/bin/sh", "-c", f"'{runvoy_bin}' run yes | head -2"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.stdout == "y\ny\n"
    assert "stdout was closed; stopping" in done.stderr
    listed = json.loads(script("list", "--json").stdout)
    assert [e["status"] for e in listed] == ["CANCELLED"]


def _console(code: str) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )


def test_the_fast_exit_keeps_exit_codes_output_and_atexit_handlers() -> None:
    done = _console(
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
        "sys.argv = ['runvoy', 'run', 'echo out; exit 3']\n"
        "from runvoy_cli.main import console_main\n"
        "console_main()\n"
    )
    assert done.returncode == 3
    assert done.stdout == "out\n"
    assert done.stderr.rstrip().endswith("atexit ran")


def test_the_fast_exit_waits_for_a_running_thread() -> None:
    done = _console(
        "import sys, threading, time\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        "    print('thread done', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['runvoy', 'run', 'true']\n"
        "from runvoy_cli.main import console_main\n"
        "console_main()\n"
    )
    assert done.returncode == 0
    assert done.stdout == "thread done\n"
