"""The end-to-end suite: the whole lifecycle through the runner and the Python API on a provider — output and
exit codes, locks and fences, cancel versus kill, the runner's own timeout — and a second process that sees,
waits on, stops and reconciles a run started by the first (what `runvoy status` in another terminal does).

Fixtures::

    class TestAcmeRunner(RunnerConformance):
        @pytest.fixture
        def runvoy_args(self, acme_config) -> tuple[str, dict]:
            return "acme", acme_config  # Runvoy(provider=NAME, **CONFIG), CONFIG JSON-ready

The provider must be set up (``runvoy setup``) by the fixture; a second process gets the same arguments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from runvoy_core.models import Status, StopReason
from runvoy_core.testing.sinks import RecordingSink
from runvoy_core.testing.waiting import wait_for

_OTHER_PROCESS = textwrap.dedent(
    """
    import json, sys
    from runvoy_core.api import Runvoy
    name, config, execution_id = json.loads(sys.argv[1])
    out = {}
    with Runvoy(provider=name, **config) as rv:
        out["seen"] = rv.status(execution_id).status.value
        out["stop"] = rv.kill(execution_id).stop_requested
        out["final"] = rv.wait(execution_id, timeout=120).status.value
        out["reconcile"] = [a for a in rv.reconcile() if a.get("execution") == execution_id]
    print("RESULT " + json.dumps(out))
    """
)


class RunnerConformance:
    max_wait: ClassVar[float] = 120.0
    """Upper bound for a run to reach a state (never a synchronisation: every wait polls a state)."""

    @pytest.fixture
    def runvoy(self, runvoy_args: tuple[str, dict[str, Any]]) -> Iterator[Any]:
        from runvoy_core.api import Runvoy

        name, config = runvoy_args
        client = Runvoy(provider=name, **config)
        yield client
        client.close()

    def _until(self, rv: Any, execution_id: str, *statuses: Status) -> Any:
        def reached() -> Any:
            record = rv.status(execution_id)
            return record if record.status in statuses or record.status.is_terminal else None

        return wait_for(reached, what=f"{execution_id} to reach {statuses}", timeout=self.max_wait)

    # -- output and exit codes ---------------------------------------------------------------------------------
    def test_a_run_gives_its_output_lines_and_exit_code(self, runvoy: Any) -> None:
        sink = RecordingSink()
        ex = runvoy.run("echo first; echo last; exit 3", log_sink=sink)
        assert ex.status is Status.FAILED and ex.exit_code == 3, ex.reason
        assert sink.lines()[-2:] == ["first", "last"], "the final lines reach the caller"
        assert [e.message for e in runvoy.logs(ex.id)][-2:] == ["first", "last"]

    def test_a_detached_run_converges_on_wait(self, runvoy: Any) -> None:
        ex = runvoy.submit("echo detached")
        final = runvoy.wait(ex.id, timeout=self.max_wait)
        assert final.status is Status.SUCCEEDED and final.exit_code == 0

    # -- locks and fences ----------------------------------------------------------------------------------------
    def test_a_locked_run_gets_its_fence_and_releases_the_lock(self, runvoy: Any) -> None:
        from runvoy_core.locks import LockManager
        from runvoy_core.models import LockState

        sink = RecordingSink()
        ex = runvoy.run('echo "$RUNVOY_LOCK/$RUNVOY_FENCE"', lock="kit-lock", log_sink=sink)
        assert ex.status is Status.SUCCEEDED, ex.reason
        assert sink.lines()[-1] == f"kit-lock/{ex.fence}"
        found = LockManager(runvoy.register).get("kit-lock")
        assert found is not None and found[0].state is LockState.RELEASED
        again = runvoy.run("true", lock="kit-lock")
        assert again.fence is not None and ex.fence is not None and again.fence > ex.fence

    # -- cancel, kill, timeout --------------------------------------------------------------------------------------
    def test_cancel_and_kill_end_a_run_as_cancelled(self, runvoy: Any) -> None:
        cancelled = runvoy.submit("echo up; sleep 300", stop_grace="2s")
        # a grace longer than a test should wait: only the forced stop ends it in time (a cloud may still bound
        # a forced stop by its own stop timeout: ECS waits the task's stopTimeout, which is this grace)
        killed = runvoy.submit("trap '' TERM; echo up; sleep 300", stop_grace="30s")
        self._until(runvoy, cancelled.id, Status.RUNNING)
        self._until(runvoy, killed.id, Status.RUNNING)
        assert runvoy.kill(cancelled.id).stop_requested is StopReason.CANCEL
        assert runvoy.kill(killed.id, force=True).stop_requested is StopReason.KILL
        for ex in (cancelled, killed):
            final = runvoy.wait(ex.id, timeout=self.max_wait)
            assert final.status is Status.CANCELLED, (ex.id, final.reason)

    def test_the_runners_timeout_ends_a_run_as_timed_out(self, runvoy: Any) -> None:
        ex = runvoy.run("echo started; sleep 300", timeout="3s", stop_grace="2s")
        assert ex.status is Status.TIMED_OUT, ex.reason
        assert [e.message for e in runvoy.logs(ex.id)][:1] == ["started"]

    # -- another process ------------------------------------------------------------------------------------------
    def test_another_process_sees_stops_waits_on_and_reconciles_a_run(
        self, runvoy: Any, runvoy_args: tuple[str, dict[str, Any]]
    ) -> None:
        ex = runvoy.submit("echo up; sleep 300", stop_grace="2s")
        self._until(runvoy, ex.id, Status.RUNNING)
        name, config = runvoy_args
        done = subprocess.run(
            [sys.executable, "-c", _OTHER_PROCESS, json.dumps([name, config, ex.id])],
            capture_output=True,
            text=True,
            timeout=self.max_wait + 60,
            env=dict(os.environ),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        result = json.loads(line.removeprefix("RESULT "))
        assert result["seen"] in ("STARTING", "RUNNING"), "the other process sees the run alive, not LOST"
        assert result["stop"] == "cancel"
        assert result["final"] == "CANCELLED"
        assert result["reconcile"] == [], "nothing is left to repair"
        assert runvoy.status(ex.id).status is Status.CANCELLED
