"""The lifecycle end to end through the Python API on the local provider (real processes, real SQLite)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from runvoy_core.api import Runvoy
from runvoy_core.errors import TransientProviderError, ValidationFailed
from runvoy_core.models import Status
from runvoy_core.testing.sinks import RecordingSink as Sink
from runvoy_core.testing.waiting import DEADLINE, wait_for, wait_for_status


@pytest.fixture
def rv() -> Runvoy:
    return Runvoy()


def test_run_success_streams_logs_and_records_everything(rv: Runvoy) -> None:
    sink = Sink()
    ex = rv.run('echo "id=$RUNVOY_EXECUTION_ID"; echo err >&2', log_sink=sink)
    assert ex.status == Status.SUCCEEDED and ex.exit_code == 0
    assert f"id={ex.id}" in sink.lines("stdout")
    assert sink.lines("stderr") == ["err"]
    assert ex.started_at and ex.finished_at and ex.finished_at >= ex.started_at
    assert ex.request_id and ex.request_id.startswith("req-")
    assert ex.user and ex.host and ex.provider == "local"
    events = [e.event for e in rv.events(ex.id)]
    assert events[0] == "created" and events[-1] == "finished" and "started" in events
    again = rv.status(ex.id[:6])
    assert again.status == Status.SUCCEEDED and again.version == ex.version


def test_run_failure_keeps_exit_code(rv: Runvoy) -> None:
    ex = rv.run("echo out; exit 3")
    assert ex.status == Status.FAILED and ex.exit_code == 3
    assert ex.reason == "exited with code 3"
    assert [e.message for e in rv.logs(ex.id)] == ["out"]


def test_timeout_ends_as_timed_out(rv: Runvoy) -> None:
    start = time.monotonic()
    ex = rv.run("sleep 300", timeout="1s", stop_grace="1s")
    assert ex.status == Status.TIMED_OUT
    assert time.monotonic() - start < 120  # the command alone would take 300 s


def test_detached_run_converges_on_read_and_kill_cancels(rv: Runvoy) -> None:
    ex = rv.submit("sleep 300")
    assert ex.status == Status.STARTING
    wait_for_status(rv, ex.id, Status.RUNNING)
    killed = rv.kill(ex.id, wait=DEADLINE)
    assert killed.status == Status.CANCELLED
    assert rv.list(limit=5)[0].id == ex.id


def test_detached_run_finishes_without_a_watcher(rv: Runvoy) -> None:
    ex = rv.submit("echo done; exit 4")
    final = rv.wait(ex.id, timeout=DEADLINE)
    assert final.status == Status.FAILED and final.exit_code == 4
    assert [e.message for e in rv.logs(ex.id)] == ["done"]


def test_orphaned_record_becomes_lost(rv: Runvoy) -> None:
    """A submitter that died between writing the record and starting the task leaves PENDING behind."""
    from runvoy_core.models import Execution, ExecutionRequest
    from runvoy_core.runner import ORPHAN_AFTER

    record = Execution(id="0rphan000000", provider="local", request=ExecutionRequest(command="true"))
    record.created_at = record.created_at - ORPHAN_AFTER - timedelta(seconds=1)
    rv.store.create(record)
    after = rv.status("0rphan")
    assert after.status == Status.LOST and "never started" in (after.reason or "")


def test_retried_start_never_starts_twice(
    rv: Runvoy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The task starts but the answer is lost: the runner finds it instead of starting a second one."""
    compute = rv.provider.compute
    real_start = compute.start
    calls = []

    def start_then_fail(spec, key):  # type: ignore[no-untyped-def]
        calls.append(key)
        real_start(spec, key)
        if len(calls) == 1:
            raise TransientProviderError("connection reset after the request was sent")
        return key

    monkeypatch.setattr(compute, "start", start_then_fail)
    ex = rv.run("echo once >> counter.txt", workdir=str(tmp_path))
    assert ex.status == Status.SUCCEEDED
    assert len(calls) == 1
    assert (tmp_path / "counter.txt").read_text() == "once\n"  # the command ran exactly once
    assert compute.find(ex.id) == ex.task_ref


def test_bad_request_is_a_clear_error(rv: Runvoy) -> None:
    with pytest.raises(ValidationFailed, match=r"resources\.memory"):
        rv.run("true", memory="lots")


def test_reconcile_reports_what_it_repaired(rv: Runvoy) -> None:
    """A run whose watcher died is finalized by reconcile, and reported as repaired."""
    ex = rv.submit("exit 5")
    assert rv.runner.provider.compute.wait(ex.task_ref, DEADLINE).ended  # type: ignore[attr-defined]
    actions = rv.reconcile()
    repaired = [a for a in actions if a.get("execution") == ex.id]
    assert repaired and repaired[0]["action"] == "repaired" and repaired[0]["to"] == "FAILED"
    assert rv.get(ex.id).exit_code == 5


def test_other_shells_writing_the_record_never_break_the_watcher() -> None:
    """`runvoy status` and `runvoy kill` from another shell write the same record as the attached watcher:
    the watcher merges their changes (the kill's reason included) instead of failing on the version."""
    import threading

    watcher_rv, other = Runvoy(), Runvoy()
    result: dict[str, object] = {}
    started = threading.Event()

    def attached() -> None:
        result["ex"] = watcher_rv.run(
            "sleep 300",
            stop_grace="1s",
            on_start=lambda handle: (result.setdefault("id", handle.execution.id), started.set()),
        )

    thread = threading.Thread(target=attached, daemon=True)
    thread.start()
    assert started.wait(DEADLINE)
    execution_id = str(result["id"])
    # an observer's writes race the watcher's (polled without a pause, to make the race likely)
    wait_for(lambda: other.status(execution_id).status == Status.RUNNING, what="RUNNING", interval=0)
    other.kill(execution_id)
    thread.join(DEADLINE)
    ex = result["ex"]
    assert ex.status == Status.CANCELLED, (ex.status, ex.reason)  # type: ignore[attr-defined]


def test_each_api_call_gets_its_own_request_id_unless_the_caller_binds_one(rv: Runvoy) -> None:
    import contextvars

    # a fresh context, as a program that never bound a request id has (other tests in this process did)
    contextvars.Context().run(_request_ids_per_call, rv)


def _request_ids_per_call(rv: Runvoy) -> None:
    from runvoy_core.logging import bind_request_id, current_request_id

    sink = Sink()
    first = rv.run('echo "$RUNVOY_REQUEST_ID"', log_sink=sink)
    second = rv.submit("true")
    assert first.request_id and second.request_id and first.request_id != second.request_id
    assert sink.lines() == [first.request_id], "the task sees the request id of its own call"
    assert current_request_id() is None, "a call's request id does not leak into the caller's context"
    bind_request_id("req-from-the-caller")
    assert rv.run("true").request_id == "req-from-the-caller"
