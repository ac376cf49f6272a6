"""The warm process (runvoy_cli.warm, decision 1414): a command it serves is the same command — same output, exit
status, environment and working directory — it imports nothing of runvoy's, and the process steps aside when
it would be wrong: turned off, a stale install, a directory someone else could write to, idle for too long.

The signal cases (Ctrl-C once and twice, SIGKILL of the caller, a closed pipe) run warm and cold in
tests/cli/test_cli_process.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runvoy_cli.warm import common
from runvoy_core.testing.waiting import DEADLINE, gate, wait_for
from tests.conftest import served_warm

RUNVOY = str(Path(sys.executable).parent / "runvoy")
REPO = Path(__file__).resolve().parents[2]
ID = re.compile(r"\b[0-9a-f]{12}\b")


def runvoy(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNVOY, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env if env is not None else os.environ.copy(),
        cwd=cwd,
    )


def cold(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return runvoy(*args, env={**os.environ, "RUNVOY_WARM": "0"}, cwd=cwd)


# a run's closing line: its duration, and so its cost and the cheapest cloud, differ from run to run
SUMMARY = re.compile(r" in \d+(\.\d+)?s, cost .*$", re.MULTILINE)


def normal(text: str) -> str:
    return SUMMARY.sub(" in Ns, cost C", ID.sub("ID", text))


def same(warm: subprocess.CompletedProcess[str], cold_: subprocess.CompletedProcess[str]) -> None:
    """Equal exit status and output, execution ids and each run's duration and cost aside."""
    assert warm.returncode == cold_.returncode, (warm.stderr, cold_.stderr)
    assert normal(warm.stdout) == normal(cold_.stdout)
    assert normal(warm.stderr) == normal(cold_.stderr)


def server_pid(runtime: Path) -> int | None:
    for lock in (runtime / "runvoy").glob("*.lock"):
        text = lock.read_text().strip()
        if text.isdigit():
            return int(text)
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose; the server's parent may not have reaped it
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_served_command_is_the_same_command(warm_process: Path, tmp_path: Path) -> None:
    assert runvoy("run", "echo out; echo err >&2; exit 3").returncode == 3
    execution_id = json.loads(runvoy("list", "--json").stdout)[0]["id"]
    commands = [
        ("run", "echo hi; exit 3"),
        ("run", "--detach", "true"),
        ("status", execution_id, "--json"),
        ("logs", execution_id),
        ("list", "--json", "--limit", "1"),
        ("locks", "list", "--json"),
        ("cost", "estimate", "--cpu", "1", "--memory", "2GiB", "--duration", "10m", "--json"),
        ("config", "show"),
        ("providers", "--json"),
        ("run", "--bogus", "true"),  # a usage error: click's message, exit 2
        ("status", "ffffff"),  # an unknown id: runvoy's error and hint, exit 125
        ("run", "--memory", "lots", "true"),
    ]
    for args in commands:
        warm = runvoy(*args)
        cold_ = cold(*args)
        if args[0] == "run" and "--detach" in args:
            assert warm.returncode == cold_.returncode == 0 and ID.fullmatch(warm.stdout.strip())
            continue
        if args[0] == "list":  # the detached run above may end between the two listings
            assert warm.returncode == cold_.returncode == 0
            continue
        same(warm, cold_)
    served = [line[0] for line in served_warm(warm_process)]
    for args in commands:
        assert " ".join(args) in served, f"`runvoy {' '.join(args)}` did not go through the warm process"


def test_a_warm_child_imports_nothing_of_runvoy_s(warm_process: Path) -> None:
    runvoy("run", "true")
    execution_id = json.loads(runvoy("list", "--json").stdout)[0]["id"]
    for args in (
        ("run", "true"),
        ("status", execution_id),
        ("list",),
        ("logs", execution_id),
        ("locks", "list"),
    ):
        assert runvoy(*args).returncode == 0
    for command, status, imported, _ in served_warm(warm_process)[1:]:
        ours = [m for m in imported.split() if m.startswith(("runvoy_core", "runvoy_cli"))]
        assert status == "0" and not ours, f"{command}: imported {ours}"


def test_the_caller_s_environment_directory_and_umask_are_the_command_s(
    warm_process: Path, tmp_path: Path
) -> None:
    here = tmp_path / "somewhere"
    here.mkdir()
    script = "pwd; umask"
    first = runvoy("run", script, cwd=here)
    second = runvoy("run", script, cwd=tmp_path)
    assert first.stdout.splitlines()[0] == str(here)
    assert second.stdout.splitlines()[0] == str(tmp_path)
    same(first, cold("run", script, cwd=here))
    # the environment is the caller's at every command: here it names a provider that does not exist
    refused = runvoy("list", env={**os.environ, "RUNVOY_PROVIDER": "nosuch"})
    same(refused, runvoy("list", env={**os.environ, "RUNVOY_PROVIDER": "nosuch", "RUNVOY_WARM": "0"}))
    assert refused.returncode == 125 and "nosuch" in refused.stderr
    assert [line[0] for line in served_warm(warm_process)] == ["run pwd; umask"] * 2 + ["list"]


def test_each_command_uses_its_own_runvoy_home(warm_process: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    other.mkdir()
    runvoy("run", "echo in the first home")
    runvoy("run", "echo in the second home", env={**os.environ, "RUNVOY_HOME": str(other)})
    first = json.loads(runvoy("list", "--json").stdout)
    second = json.loads(runvoy("list", "--json", env={**os.environ, "RUNVOY_HOME": str(other)}).stdout)
    assert {r["id"] for r in first}.isdisjoint({r["id"] for r in second})
    assert [r["request"]["command"] for r in second] == ["echo in the second home"]


def test_runvoy_warm_0_starts_cold_and_starts_no_server(tmp_path: Path) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="rvw"))
    try:
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "RUNVOY_WARM": "0"}
        env["RUNVOY_WARM_TRACE"] = str(runtime / "trace")
        for _ in range(2):
            assert runvoy("list", env=env).returncode == 0
        assert not (runtime / "runvoy").exists()
        assert not (runtime / "trace").exists()
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_a_directory_others_can_enter_is_not_used() -> None:
    runtime = Path(tempfile.mkdtemp(prefix="rvw"))
    try:
        folder = runtime / "runvoy"
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "RUNVOY_WARM": "1"}
        for _ in range(2):
            assert runvoy("list", env=env).returncode == 0
        assert sorted(p.name for p in folder.iterdir()) == []  # no lock, no socket: nothing listens there
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def copied_install(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """runvoy's packages copied aside and put first on PYTHONPATH: files this test may edit under a server."""
    runtime = Path(tempfile.mkdtemp(prefix="rvw"))
    packages = tmp_path / "packages"
    for name in ("runvoy_cli", "runvoy_core"):
        shutil.copytree(REPO / name, packages / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **os.environ,
        "PYTHONPATH": str(packages),
        "XDG_RUNTIME_DIR": str(runtime),
        "RUNVOY_WARM": "1",
        "RUNVOY_WARM_TRACE": str(runtime / "trace"),
    }
    try:
        yield env, packages
    finally:
        pid = server_pid(runtime)
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(runtime, ignore_errors=True)


def test_a_changed_source_file_retires_the_server(copied_install: tuple[dict[str, str], Path]) -> None:
    env, packages = copied_install
    runtime = Path(env["XDG_RUNTIME_DIR"])
    trace = Path(env["RUNVOY_WARM_TRACE"])
    assert runvoy("list", env=env).returncode == 0  # cold; starts the server
    wait_for(lambda: any((runtime / "runvoy").glob("*.sock")) or None, what="the server is listening")
    pid = server_pid(runtime)
    assert pid is not None
    assert runvoy("list", env=env).returncode == 0
    assert [line[0] for line in served_warm(trace)] == ["list"]
    # an upgrade or an edit: the server must not serve the old code
    api = packages / "runvoy_core" / "api.py"
    api.write_text(api.read_text() + "\n# edited\n")
    assert runvoy("list", env=env).returncode == 0
    assert len(served_warm(trace)) == 1, "a stale server served a command"
    wait_for(lambda: (not alive(pid)) or None, what="the stale server exits")


def test_an_idle_server_exits_and_removes_its_socket() -> None:
    runtime = Path(tempfile.mkdtemp(prefix="rvw"))
    try:
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "RUNVOY_WARM": "1", "RUNVOY_WARM_IDLE": "1"}
        assert runvoy("list", env=env).returncode == 0
        pid_holder: list[int] = []

        def started() -> bool | None:
            pid = server_pid(runtime)
            if pid is not None:
                pid_holder.append(pid)
            return pid is not None or None

        wait_for(started, what="the server has started")
        wait_for(lambda: (not alive(pid_holder[0])) or None, what="the idle server exits")
        assert not list((runtime / "runvoy").glob("*.sock"))
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_another_interpreter_setting_gets_another_server(warm_process: Path) -> None:
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    before = set((runtime / "runvoy").glob("*.sock"))
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    assert (
        runvoy("list", env=env).returncode == 0
    )  # not served by the running server: other interpreter flags
    assert [line[0] for line in served_warm(warm_process)] == []
    wait_for(
        lambda: (len(set((runtime / "runvoy").glob("*.sock")) - before) == 1) or None, what="a second server"
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_runvoy_warm_is_off_only_for_the_four_words(value: str) -> None:
    saved = os.environ.get(common.DISABLE_ENV)
    try:
        os.environ[common.DISABLE_ENV] = value.replace("\x00", "")
        expected = value.replace("\x00", "").strip().lower() not in ("0", "false", "no", "off")
        assert common.enabled() is expected
    finally:
        if saved is None:
            os.environ.pop(common.DISABLE_ENV, None)
        else:
            os.environ[common.DISABLE_ENV] = saved


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=20), st.floats(allow_nan=True).map(repr), st.integers().map(str)))
def test_runvoy_warm_idle_is_bounded(value: str) -> None:
    saved = os.environ.get(common.IDLE_ENV)
    try:
        os.environ[common.IDLE_ENV] = value.replace("\x00", "")
        seconds = common.idle_seconds()
        assert common.IDLE_BOUNDS[0] <= seconds <= common.IDLE_BOUNDS[1]
    finally:
        if saved is None:
            os.environ.pop(common.IDLE_ENV, None)
        else:
            os.environ[common.IDLE_ENV] = saved


@pytest.mark.parametrize("closed", ["<&-", ">&-", "2>&-"])
def test_a_closed_standard_stream_runs_cold_and_cleanly(warm_process: Path, closed: str) -> None:
    # the client must not open its socket first: it would take the free number and pass it on as the stream
    done = subprocess.run(
        ["sh", "-c", f'exec "$0" list {closed}', RUNVOY],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert [line[0] for line in served_warm(warm_process)] == []


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_a_signal_the_caller_ignores_is_ignored_by_the_command(
    warm_process: Path, tmp_path: Path, warm: bool
) -> None:
    """`nohup runvoy run ...`: a hangup must not stop the run, warm or cold."""
    release = tmp_path / "release"
    env = {**os.environ, "RUNVOY_WARM": "1" if warm else "0"}
    proc = subprocess.Popen(
        ["sh", "-c", 'trap "" HUP; exec "$0" run "echo started; $1; echo done"', RUNVOY, gate(release)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "started\n"
        proc.send_signal(signal.SIGHUP)
        # the hangup reached nothing: the run still finishes once released
        release.touch()
        out, err = proc.communicate(timeout=DEADLINE)
        assert proc.returncode == 0, err
        assert out == "done\n"
    finally:
        proc.kill()
        proc.communicate()
    served = [line[0] for line in served_warm(warm_process)]
    assert (len(served) == 1) is warm


def test_the_client_imports_next_to_nothing() -> None:
    """What a warm command costs its own process is the interpreter and this: no typing, click or runvoy_core."""
    code = (
        "import sys\n"
        "from runvoy_cli import entry\n"
        "from runvoy_cli.warm import client, common\n"
        "entry._warm_command(['list'])\n"
        "common.paths(common.fingerprint())\n"
        "client._Relay().restore()\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    # not measured by coverage (a measured test run starts it in every Python process, with its imports)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    loaded = set(done.stdout.split())
    assert "runvoy_cli.warm.client" in loaded  # the probe sees the client's own imports
    heavy = {
        m
        for m in loaded
        if m.split(".")[0] in {"typing", "click", "msgspec", "runvoy_core", "signal", "socket"}
    }
    assert not heavy, sorted(heavy)
