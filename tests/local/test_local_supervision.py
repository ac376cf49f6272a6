"""The local provider's supervision: detachment, process-group kills, a dead supervisor, secrets, start
failures and the podman wrapping (real processes under a tmp RUNVOY_HOME)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runvoy_core.errors import ImageNotSupported, NotFound, UsageError
from runvoy_core.models import ExecutionRequest, new_execution_id
from runvoy_core.ports.compute import TaskPhase, TaskSpec, TaskState
from runvoy_core.providers.local import procinfo
from runvoy_core.providers.local.config import LocalConfig
from runvoy_core.providers.local.provider import LocalProvider
from runvoy_core.testing.waiting import DEADLINE, gate, wait_for


@pytest.fixture
def provider(runvoy_home: Path) -> Iterator[LocalProvider]:
    local = LocalProvider(runvoy_home)
    yield local
    for state in local.compute.list_active():
        local.compute.stop(state.ref, 0, force=True)
    local.close()


def spec_for(command: str, **fields: object) -> TaskSpec:
    eid = new_execution_id()
    env = {"RUNVOY_EXECUTION_ID": eid, **fields.pop("env", {})}  # type: ignore[dict-item]
    return TaskSpec(execution_id=eid, argv=["/bin/sh", "-c", command], env=env, **fields)  # type: ignore[arg-type]


def wait_until(probe, timeout: float = DEADLINE, interval: float = 0.02):  # type: ignore[no-untyped-def]
    return wait_for(probe, what="the condition", timeout=timeout, interval=interval)


def run_to_end(provider: LocalProvider, spec: TaskSpec, timeout: float = DEADLINE) -> TaskState:
    ref = provider.compute.start(spec, spec.execution_id)
    state = provider.compute.wait(ref, timeout)
    assert state.ended, state
    return state


def running(provider: LocalProvider, ref: str) -> TaskState:
    state: TaskState = wait_until(
        lambda: (s := provider.compute.describe(ref)).phase == TaskPhase.RUNNING and s
    )
    return state


def group_gone(pgid: int, within: float = DEADLINE) -> bool:
    """No process of the group exists (killed members linger as zombies until init reaps them)."""
    deadline = time.monotonic() + within
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def test_supervisor_survives_its_starter(runvoy_home: Path, provider: LocalProvider) -> None:
    """The starter process dies (SIGKILL, with its whole process group); the task finishes anyway."""
    eid = new_execution_id()
    starter = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from runvoy_core.ports.compute import TaskSpec
        from runvoy_core.providers.local.compute import LocalCompute
        spec = TaskSpec(execution_id={eid!r}, argv=["/bin/sh", "-c", "sleep 0.5; echo survived; exit 7"])
        LocalCompute(Path(os.environ["RUNVOY_HOME"])).start(spec, {eid!r})
        print("started", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(DEADLINE)
    finally:
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert provider.compute.find(eid) == eid
    state = provider.compute.wait(eid, DEADLINE)
    assert state.phase == TaskPhase.STOPPED and state.exit_code == 7
    assert [e.message for e in provider.logs.read(eid).events] == ["survived"]


def test_stop_kills_the_whole_process_group(provider: LocalProvider) -> None:
    spec = spec_for("sleep 300 & sleep 300 & echo up; wait")
    ref = provider.compute.start(spec, spec.execution_id)
    state = running(provider, ref)
    wait_until(lambda: provider.logs.read(ref).events)
    pgid = state.detail["pid"]
    assert not group_gone(pgid, within=0)
    provider.compute.stop(ref, 1.0)
    final = provider.compute.wait(ref, DEADLINE)
    assert final.phase == TaskPhase.STOPPED and final.stopped_by_request
    assert group_gone(pgid)


def test_graceful_stop_escalates_to_kill_after_the_grace(provider: LocalProvider) -> None:
    spec = spec_for("trap 'echo got-term' TERM; echo ready; while :; do sleep 0.05; done")
    ref = provider.compute.start(spec, spec.execution_id)
    state = running(provider, ref)
    wait_until(lambda: provider.logs.read(ref).events)
    asked = time.monotonic()
    provider.compute.stop(ref, 0.6)
    final = provider.compute.wait(ref, DEADLINE)
    took = time.monotonic() - asked
    assert 0.5 <= took < DEADLINE, took  # the grace is honoured; load may only stretch it
    assert final.stopped_by_request and final.detail["killed"]
    assert final.signal == signal.SIGKILL and final.exit_code == 128 + signal.SIGKILL
    assert final.reason and "killed" in final.reason
    assert "got-term" in [e.message for e in provider.logs.read(ref).events]
    assert group_gone(state.detail["pid"])


def test_force_stop_kills_at_once(provider: LocalProvider) -> None:
    spec = spec_for("trap '' TERM; echo ready; sleep 300")
    ref = provider.compute.start(spec, spec.execution_id)
    state = running(provider, ref)
    wait_until(lambda: provider.logs.read(ref).events)
    asked = time.monotonic()
    provider.compute.stop(ref, 300, force=True)
    final = provider.compute.wait(ref, DEADLINE)
    assert time.monotonic() - asked < DEADLINE  # not after the 300 s grace
    assert final.stopped_by_request and final.signal == signal.SIGKILL
    assert group_gone(state.detail["pid"])


def test_a_killed_supervisor_makes_the_task_unknown(provider: LocalProvider) -> None:
    spec = spec_for("echo up; sleep 300")
    ref = provider.compute.start(spec, spec.execution_id)
    state = running(provider, ref)
    sup_pid, pid = state.detail["supervisor_pid"], state.detail["pid"]
    os.kill(sup_pid, signal.SIGKILL)
    lost = wait_until(lambda: (s := provider.compute.describe(ref)).ended and s)
    assert lost.phase == TaskPhase.UNKNOWN
    assert lost.reason and f"pid {sup_pid}" in lost.reason and "without recording" in lost.reason
    assert "was still running" in lost.reason  # the runner then finds and stops it (decision 0010)
    assert provider.compute.list_active() == []
    provider.compute.cleanup(ref)  # kills what the dead supervisor left behind
    assert group_gone(pid)


def test_describe_of_an_unknown_ref_is_unknown(provider: LocalProvider) -> None:
    state = provider.compute.describe("nosuchtask")
    assert state.phase == TaskPhase.UNKNOWN and state.reason
    with pytest.raises(NotFound):
        provider.compute.stop("nosuchtask", 1)


def test_a_missing_program_fails_to_start(provider: LocalProvider) -> None:
    eid = new_execution_id()
    spec = TaskSpec(execution_id=eid, argv=["/definitely/not/here", "x"])
    state = run_to_end(provider, spec)
    assert state.phase == TaskPhase.STOPPED and state.failed_to_start
    assert state.reason and "/definitely/not/here" in state.reason


def test_a_module_in_the_callers_directory_does_not_replace_the_supervisors(
    provider: LocalProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started with `-m`, the supervisor had the caller's directory first on sys.path: a json.py there made
    every local run started from it LOST."""
    for name in ("json", "selectors", "sqlite3", "runvoy_core"):
        (tmp_path / f"{name}.py").write_text("raise SystemExit('the caller directory was imported from')\n")
    monkeypatch.chdir(tmp_path)
    state = run_to_end(provider, spec_for("echo fine"))
    assert state.exit_code == 0, state.reason


def test_stop_right_after_start_never_leaves_it_running(provider: LocalProvider) -> None:
    spec = spec_for("sleep 300")
    ref = provider.compute.start(spec, spec.execution_id)
    provider.compute.stop(ref, 1.0)
    state = provider.compute.wait(ref, DEADLINE)
    assert state.phase == TaskPhase.STOPPED and state.stopped_by_request, state


def test_wait_returns_as_soon_as_the_task_ends_and_on_timeout(
    provider: LocalProvider, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    spec = spec_for(gate(release))  # it ends only when the test says so
    ref = provider.compute.start(spec, spec.execution_id)
    # a wait that ignored its timeout would block until this safety net ends the task
    safety = threading.Timer(DEADLINE, release.touch)
    safety.daemon = True
    safety.start()
    early = provider.compute.wait(ref, 0.05)
    assert not early.ended
    release.touch()
    begun = time.monotonic()
    final = provider.compute.wait(ref, 300)
    assert final.ended and time.monotonic() - begun < DEADLINE  # at the end, not at the timeout
    safety.cancel()


def test_wait_on_a_task_started_by_another_process(runvoy_home: Path, provider: LocalProvider) -> None:
    """No Popen to wait on here: the supervisor's exit is watched through a pidfd (or by polling)."""
    spec = spec_for("sleep 0.3; exit 2")
    provider.compute.start(spec, spec.execution_id)
    other = LocalProvider(runvoy_home)
    from runvoy_core.providers.local import compute as compute_module

    child = compute_module._CHILDREN.pop(spec.execution_id)
    try:
        state = other.compute.wait(spec.execution_id, DEADLINE)
        assert state.phase == TaskPhase.STOPPED and state.exit_code == 2
    finally:
        child.wait(DEADLINE)
        other.close()


def test_timeout_is_enforced_by_the_supervisor(provider: LocalProvider) -> None:
    begun = time.monotonic()
    state = run_to_end(provider, spec_for("sleep 300", timeout=0.5, stop_grace=0.5))
    assert state.timed_out and not state.stopped_by_request
    assert state.reason and "timeout" in state.reason
    assert time.monotonic() - begun < DEADLINE  # not the command's 300 s


def test_a_command_that_closed_its_output_still_times_out_and_stops(provider: LocalProvider) -> None:
    """The supervisor's loop used to end at EOF on both pipes and then wait for the process, deaf to the
    timeout and to stops: `exec >&- 2>&-; sleep 600` ran its 600 s."""
    state = run_to_end(provider, spec_for("exec >&- 2>&-; sleep 600", timeout=0.5, stop_grace=0.5))
    assert state.timed_out and state.exit_code == 143
    spec = spec_for("exec >&- 2>&-; echo closed > started; sleep 600", workdir=str(provider.home))
    ref = provider.compute.start(spec, spec.execution_id)
    running(provider, ref)
    wait_for(lambda: (provider.home / "started").exists(), what="the command to close its output")
    provider.compute.stop(ref, 0.5)
    state = provider.compute.wait(ref, DEADLINE)
    assert state.ended and state.stopped_by_request


def test_workdir_and_the_env_rule(
    provider: LocalProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's own variables stay with the caller; the base set and --env values reach the run."""
    monkeypatch.setenv("CALLER_ONLY", "from-the-caller")
    monkeypatch.setenv("LC_TIME", "C")
    spec = spec_for(
        'pwd; echo "only=$CALLER_ONLY"; echo "$PLAIN"; echo "lc=$LC_TIME"; test -n "$PATH" && echo path',
        env={"PLAIN": "p"},
        workdir=str(tmp_path),
    )
    state = run_to_end(provider, spec)
    assert state.exit_code == 0
    lines = [e.message for e in provider.logs.read(spec.execution_id).events]
    assert lines == [str(tmp_path), "only=", "p", "lc=C", "path"]


def test_pass_env_lets_chosen_caller_variables_through(
    runvoy_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "dev")
    monkeypatch.setenv("CALLER_ONLY", "from-the-caller")
    monkeypatch.setenv("RUNVOY_FENCE", "99")  # the caller's RUNVOY_* never passes, even with "*"
    monkeypatch.setenv("RV_SECRET_TOKEN", "x1")  # nor a secret the run did not ask for
    local = LocalProvider(runvoy_home, LocalConfig(pass_env=["AWS_*"], secret_env_prefix="RV_SECRET_"))
    everything = LocalProvider(runvoy_home, LocalConfig(pass_env=["*"], secret_env_prefix="RV_SECRET_"))
    try:
        command = 'echo "aws=$AWS_PROFILE only=$CALLER_ONLY fence=$RUNVOY_FENCE token=$RV_SECRET_TOKEN"'
        spec = spec_for(command)
        run_to_end(local, spec)
        assert [e.message for e in local.logs.read(spec.execution_id).events] == [
            "aws=dev only= fence= token="
        ]
        spec = spec_for(command)
        run_to_end(everything, spec)
        lines = [e.message for e in everything.logs.read(spec.execution_id).events]
        assert lines == ["aws=dev only=from-the-caller fence= token="]
    finally:
        local.close()
        everything.close()


def test_a_secret_reaches_only_the_run_that_asked_for_it(
    runvoy_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RV_SECRET_TOKEN", "x1")
    local = LocalProvider(runvoy_home, LocalConfig(secret_env_prefix="RV_SECRET_"))
    try:
        command = 'echo "token=$TOKEN prefixed=$RV_SECRET_TOKEN"'
        asked, not_asked = spec_for(command, secrets=["TOKEN"]), spec_for(command)
        run_to_end(local, asked)
        run_to_end(local, not_asked)
        assert [e.message for e in local.logs.read(asked.execution_id).events] == ["token=x1 prefixed="]
        assert [e.message for e in local.logs.read(not_asked.execution_id).events] == ["token= prefixed="]
    finally:
        local.close()


def test_runvoy_variables_are_the_runners(provider: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret or a caller variable named RUNVOY_* never replaces what runvoy gives the task."""
    monkeypatch.setenv("RUNVOY_FENCE", "666")
    monkeypatch.setenv("RUNVOY_LOCK", "spoofed")
    spec = spec_for(
        'echo "fence=$RUNVOY_FENCE lock=$RUNVOY_LOCK"', env={"RUNVOY_FENCE": "7", "RUNVOY_LOCK": "db"}
    )
    run_to_end(provider, spec)
    assert [e.message for e in provider.logs.read(spec.execution_id).events] == ["fence=7 lock=db"]
    with pytest.raises(UsageError, match="RUNVOY_"):
        provider.compute.start(spec_for("true", secrets=["RUNVOY_FENCE"]), "k-reserved")
    assert provider.compute.find("k-reserved") is None


# -- secrets -------------------------------------------------------------------------------------------------
SECRET = "s3cr3t-v4lue-never-stored"


def test_secrets_come_from_the_environment_and_are_never_stored(
    provider: LocalProvider, runvoy_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", SECRET)
    # the command must not contain the value itself (its argv is stored): match it by a pattern
    spec = spec_for('case "$API_TOKEN" in s3cr3t-*-stored) echo has-secret;; esac', secrets=["API_TOKEN"])
    state = run_to_end(provider, spec)
    assert state.exit_code == 0
    assert [e.message for e in provider.logs.read(spec.execution_id).events] == ["has-secret"]
    provider.close()
    for path in runvoy_home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"secret value found in {path.name}"
    names = sqlite3.connect(runvoy_home / "state.db").execute("SELECT secret_names FROM tasks").fetchone()
    assert names == ('["API_TOKEN"]',)


def test_a_missing_secret_is_a_usage_error_naming_it(
    provider: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISSING_ONE", raising=False)
    with pytest.raises(UsageError) as info:
        provider.compute.validate(ExecutionRequest(command="true", secrets=["MISSING_ONE"]))
    assert "MISSING_ONE" in info.value.message and "MISSING_ONE" in info.value.hint
    with pytest.raises(UsageError):
        provider.compute.start(spec_for("true", secrets=["MISSING_ONE"]), "k1")
    assert provider.compute.find("k1") is None
    # the one rule of every provider: a path's last segment, upper-cased (decision 0014)
    monkeypatch.delenv("DB_PASSWORD", raising=False)
    with pytest.raises(UsageError, match="environment variable DB_PASSWORD"):
        provider.compute.validate(ExecutionRequest(command="true", secrets=["prod/db-password"]))


def test_a_secret_reaches_the_command_under_the_one_rule(
    provider: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    spec = spec_for('[ "$DB_PASSWORD" = s3cret ] && echo same', secrets=["prod/db-password"])
    run_to_end(provider, spec)
    assert [e.message for e in provider.logs.read(spec.execution_id).events] == ["same"]


def test_secret_prefix_from_config(runvoy_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RV_SECRET_TOKEN", "x1")
    local = LocalProvider(runvoy_home, LocalConfig(secret_env_prefix="RV_SECRET_"))
    try:
        spec = spec_for('echo "$TOKEN"', secrets=["TOKEN"])
        run_to_end(local, spec)
        assert [e.message for e in local.logs.read(spec.execution_id).events] == ["x1"]
    finally:
        local.close()


# -- images ----------------------------------------------------------------------------------------------------
def test_image_without_a_container_runtime_is_refused(provider: LocalProvider) -> None:
    with pytest.raises(ImageNotSupported) as info:
        provider.compute.validate(ExecutionRequest(command="true", image="alpine"))
    assert "container runtime" in info.value.message and "podman" in info.value.hint
    with pytest.raises(ImageNotSupported):
        provider.compute.start(spec_for("true", image="alpine"), "k2")


def test_podman_wraps_the_command(runvoy_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN", SECRET)
    missing = LocalProvider(
        runvoy_home, LocalConfig(container_runtime="podman", runtime_path="no-such-podman")
    )
    with pytest.raises(ImageNotSupported, match="not installed"):
        missing.compute.validate(ExecutionRequest(command="true", image="alpine"))
    missing.close()
    # any executable stands in for podman here: only the argv is checked, nothing is run
    local = LocalProvider(runvoy_home, LocalConfig(container_runtime="podman", runtime_path="sh"))
    try:
        local.compute.validate(ExecutionRequest(command="true", image="alpine"))
        spec = spec_for("echo hi", image="alpine:3.20", env={"A": "1"}, secrets=["TOKEN"], workdir="/srv")
        argv = local.compute.command_argv(spec)
        assert argv[:6] == ["sh", "run", "--rm", "-i", "--runtime", "runc"]
        assert argv[-4:] == ["alpine:3.20", "/bin/sh", "-c", "echo hi"]
        for name in ("A", "TOKEN", "RUNVOY_EXECUTION_ID"):
            i = argv.index(name)
            assert argv[i - 1] == "-e"
        assert argv[argv.index("-w") + 1] == "/srv"
        assert not any(SECRET in a for a in argv)
    finally:
        local.close()


def test_resources_are_accepted_and_ignored(provider: LocalProvider) -> None:
    provider.compute.validate(
        ExecutionRequest.model_validate({"command": "true", "resources": {"cpu": 16, "memory": "120GiB"}})
    )
    with pytest.raises(UsageError, match="workdir"):
        provider.compute.validate(ExecutionRequest(command="true", workdir="/no/such/dir"))


def test_procinfo_sees_zombies_and_reused_pids() -> None:
    child = subprocess.Popen(["true"])
    start = wait_until(lambda: procinfo.start_time(child.pid) or None)
    wait_until(lambda: not procinfo.is_alive(child.pid))  # a zombie until reaped
    assert procinfo.start_time(child.pid) == start
    child.wait()
    assert not procinfo.is_alive(child.pid)
    me = os.getpid()
    assert procinfo.is_alive(me, procinfo.start_time(me))
    assert not procinfo.is_alive(me, (procinfo.start_time(me) or 0) + 1)
