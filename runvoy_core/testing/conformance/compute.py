"""The compute suite: start, describe, exit codes, idempotent start, stop, timeout, environment, listing,
validation. Requires a fixture ``provider`` (a Provider).

Commands run with ``/bin/sh -c`` (in ``image`` when the provider needs one) and use only POSIX shell and
``sleep``. Tune waits with the class attributes of ProviderWaits.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.errors import NotFound, UsageError
from runvoy_core.models import ExecutionRequest, Resources
from runvoy_core.ports.compute import TaskPhase
from runvoy_core.ports.optional import BatchStatus
from runvoy_core.ports.provider import Capability
from runvoy_core.providers.local import procinfo
from runvoy_core.testing.conformance.support import ProviderWaits, capabilities_of, wait_for

# a grandchild in its own session (out of the command's process group) that says where it is, atomically
_DETACHED_GRANDCHILD = (
    'setsid sh -c \'echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"; exec sleep 300\' & '
    'while [ ! -s "$PIDFILE" ]; do sleep 0.01; done; echo ready; '
)


class ComputeConformance(ProviderWaits):
    stop_grace: float = 2.0
    host_processes: bool = True
    """The tasks' processes run on this machine and see its files (the local provider, the cloud
    simulators); False skips the tests that look at them (a real cloud ends a container's processes itself)."""

    def impossible_request(self) -> ExecutionRequest:
        """A request this provider must refuse in validate() (override for providers that accept it)."""
        return ExecutionRequest(
            command="true",
            image=self.image,
            # within runvoy's bounds (docs/inputs.md) but no cloud pairs 16 vCPU with 1 MiB
            resources=Resources.model_validate({"cpu": 16, "memory": "1MiB"}),
        )

    # -- exit codes ---------------------------------------------------------------------------------------
    @pytest.mark.parametrize("code", [0, 3])
    def test_task_ends_with_its_exit_code(self, provider: Any, code: int) -> None:
        spec, ref = self.start(provider, f"exit {code}")
        state = self.wait_ended(provider, ref)
        assert state.phase == TaskPhase.STOPPED, state
        assert state.exit_code == code, state
        assert not state.timed_out and not state.stopped_by_request and not state.failed_to_start
        assert state.ref == ref
        assert state.execution_id in (None, spec.execution_id)

    def test_times_are_recorded(self, provider: Any) -> None:
        _, ref = self.start(provider, "sleep 0.2")
        state = self.wait_ended(provider, ref)
        assert state.started_at is not None and state.stopped_at is not None, state
        assert state.stopped_at >= state.started_at
        assert state.billed_start is not None and state.billed_stop is not None, state

    # -- output -------------------------------------------------------------------------------------------
    def test_output_lines_reach_the_logs_in_order_with_their_stream(self, provider: Any) -> None:
        _, ref = self.start(provider, "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3")
        self.wait_ended(provider, ref)
        events = self.wait_logs(provider, ref, 5)
        stdout = [e.message for e in events if e.stream == "stdout"]
        stderr = [e.message for e in events if e.stream == "stderr"]
        assert stdout == ["out1", "out2", "out3"], events
        assert stderr == ["err1", "err2"], events
        stamps = [e.timestamp for e in events]
        assert all(s.tzinfo is not None for s in stamps), "log timestamps must be timezone-aware"

    # -- idempotency --------------------------------------------------------------------------------------
    def test_start_with_the_same_key_starts_one_task(self, provider: Any) -> None:
        spec = self.make_spec("sleep 30")
        ref = provider.compute.start(spec, spec.execution_id)
        try:
            again = provider.compute.start(spec, spec.execution_id)
            assert again == ref
            assert provider.compute.find(spec.execution_id) == ref
            self.wait_running(provider, ref)
            mine = [s for s in provider.compute.list_active() if s.execution_id == spec.execution_id]
            assert [s.ref for s in mine] == [ref], mine
        finally:
            self.force_stop(provider, ref)
        self.wait_ended(provider, ref)

    def test_find_unknown_execution_is_none(self, provider: Any) -> None:
        assert provider.compute.find("000000000000") is None

    # -- stopping -----------------------------------------------------------------------------------------
    def test_stop_ends_a_running_task_gracefully(self, provider: Any) -> None:
        _, ref = self.start(provider, "sleep 30")
        try:
            self.wait_running(provider, ref)
            asked = time.monotonic()
            provider.compute.stop(ref, self.stop_grace)
            state = self.wait_ended(provider, ref, timeout=self.stop_grace + self.stop_margin)
            assert time.monotonic() - asked <= self.stop_grace + self.stop_margin
            assert state.phase == TaskPhase.STOPPED, state
            assert state.stopped_by_request, state
            assert not state.timed_out
            assert state.exit_code != 0
        finally:
            self.force_stop(provider, ref)
        provider.compute.stop(ref, self.stop_grace)  # idempotent on an ended task

    def test_force_stop_ends_a_task_that_ignores_sigterm(self, provider: Any) -> None:
        if Capability.GRACEFUL_STOP not in capabilities_of(provider):
            pytest.skip("provider has no graceful stop: every stop is a kill")
        _, ref = self.start(provider, "trap '' TERM; echo ready; sleep 30")
        try:
            self.wait_running(provider, ref)
            self.wait_logs(provider, ref, 1)  # the trap is in place
            asked = time.monotonic()
            provider.compute.stop(ref, 30, force=True)
            state = self.wait_ended(provider, ref, timeout=self.stop_margin)
            assert time.monotonic() - asked <= self.stop_margin
            assert state.stopped_by_request, state
        finally:
            self.force_stop(provider, ref)

    # -- timeout ------------------------------------------------------------------------------------------
    def test_timeout_ends_the_task_as_timed_out(self, provider: Any) -> None:
        if Capability.NATIVE_TIMEOUT not in capabilities_of(provider):
            pytest.skip("provider does not enforce timeouts itself (the runner does)")
        _, ref = self.start(provider, "sleep 30", timeout=1.0, stop_grace=1.0)
        try:
            state = self.wait_ended(provider, ref, timeout=1.0 + 1.0 + self.stop_margin)
            assert state.timed_out, state
            assert not state.stopped_by_request, state
        finally:
            self.force_stop(provider, ref)

    # -- the process rule -------------------------------------------------------------------------------
    @pytest.mark.parametrize("ending", ["normal_end", "stop", "force_stop", "timeout"])
    def test_no_descendant_outlives_the_task(self, provider: Any, ending: str, tmp_path: Path) -> None:
        """A grandchild that left the command's process group ends with the task, however the task ends."""
        if not self.host_processes:
            pytest.skip("the task's processes are not on this machine")
        if ending == "timeout" and Capability.NATIVE_TIMEOUT not in capabilities_of(provider):
            pytest.skip("provider does not enforce timeouts itself (the runner does)")
        pidfile = tmp_path / "grandchild.pid"
        then = "exit 0" if ending == "normal_end" else "sleep 300"
        # the timeout must not fire before the grandchild said where it is (that would prove nothing)
        timing = {"timeout": 5.0} if ending == "timeout" else {}
        _, ref = self.start(
            provider,
            _DETACHED_GRANDCHILD + then,
            env={"PIDFILE": str(pidfile)},
            stop_grace=1.0,
            **timing,
        )
        grandchild: tuple[int, int | None] | None = None
        try:
            grandchild = wait_for(
                lambda: _read_pid(pidfile),
                lambda found: found is not None,
                timeout=self.max_wait,
                interval=self.poll_interval,
                what="the detached grandchild's pid file",
            )
            assert grandchild is not None
            if ending == "stop":
                provider.compute.stop(ref, self.stop_grace)
            elif ending == "force_stop":
                provider.compute.stop(ref, 30, force=True)
            state = self.wait_ended(provider, ref, timeout=self.max_wait + self.stop_margin)
            if ending == "timeout":
                assert state.timed_out, state
            pid, started = grandchild
            wait_for(
                lambda: procinfo.is_alive(pid, started),
                lambda alive: not alive,
                timeout=self.stop_grace + self.stop_margin,
                interval=self.poll_interval,
                what=f"the detached grandchild (pid {pid}) to end after the task's {ending}",
            )
        finally:
            self.force_stop(provider, ref)
            if grandchild is not None and procinfo.is_alive(*grandchild):  # never leave it behind
                os.kill(grandchild[0], signal.SIGKILL)

    # -- environment --------------------------------------------------------------------------------------
    def test_environment_reaches_the_command(self, provider: Any) -> None:
        spec, ref = self.start(
            provider,
            'echo "id=$RUNVOY_EXECUTION_ID"; echo "greeting=$GREETING"',
            env={"GREETING": "hello world"},
        )
        self.wait_ended(provider, ref)
        lines = [e.message for e in self.wait_logs(provider, ref, 2)]
        assert f"id={spec.execution_id}" in lines, lines
        assert "greeting=hello world" in lines, lines

    # -- listing ------------------------------------------------------------------------------------------
    def test_list_active_lists_a_running_task_and_not_an_ended_one(self, provider: Any) -> None:
        done_spec, done_ref = self.start(provider, "true")
        spec, ref = self.start(provider, "sleep 30")
        try:
            self.wait_ended(provider, done_ref)
            self.wait_running(provider, ref)
            active = provider.compute.list_active()
            ids = {s.execution_id for s in active}
            assert spec.execution_id in ids, active
            assert done_spec.execution_id not in ids, active
            assert all(not s.ended for s in active)
        finally:
            self.force_stop(provider, ref)

    def test_status_many_says_what_describe_says(self, provider: Any) -> None:
        """``batch_status`` (decision 0028): the shared poller's batch read agrees with ``describe``."""
        if not isinstance(provider.compute, BatchStatus):
            pytest.skip("the compute has no batch read (batch_status)")
        _, done_ref = self.start(provider, "exit 3")
        _, ref = self.start(provider, "sleep 30")
        try:
            ended = self.wait_ended(provider, done_ref)
            self.wait_running(provider, ref)
            states = provider.compute.status_many([done_ref, ref, done_ref])
            assert set(states) == {done_ref, ref}, states
            assert states[done_ref].phase is TaskPhase.STOPPED and states[done_ref].exit_code == 3
            batch, single = states[done_ref].model_dump(mode="json"), ended.model_dump(mode="json")
            batch.pop("detail"), single.pop("detail")
            assert batch == single
            assert not states[ref].ended, states[ref]
        finally:
            self.force_stop(provider, ref)

    # -- validation ---------------------------------------------------------------------------------------
    def test_validate_accepts_a_plain_request(self, provider: Any) -> None:
        provider.compute.validate(ExecutionRequest(command="true", image=self.image))

    def test_validate_rejects_an_impossible_request(self, provider: Any) -> None:
        with pytest.raises(UsageError) as info:
            provider.compute.validate(self.impossible_request())
        assert info.value.message and info.value.hint

    def test_stop_of_an_unknown_task_is_not_found_or_a_no_op(self, provider: Any) -> None:
        try:
            provider.compute.stop(self.unknown_ref(), 1.0)
        except NotFound:
            pass

    def unknown_ref(self) -> str:
        """A ref that names no task (override if refs have a provider-specific shape)."""
        return "000000000000"


def _read_pid(path: Path) -> tuple[int, int | None] | None:
    """The pid in ``path`` and that process's start time (its identity), once the file is there."""
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid, procinfo.start_time(pid)
