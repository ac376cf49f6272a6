from __future__ import annotations

from runvoy_core import lifecycle
from runvoy_core.api import build_request
from runvoy_core.models import Execution, Status
from runvoy_core.ports import TaskPhase, TaskState


def _execution(**kw: object) -> Execution:
    return Execution(id="e1", provider="local", request=build_request("true", timeout="5s"), **kw)


def test_final_status_mapping() -> None:
    stopped = TaskState(ref="r", phase=TaskPhase.STOPPED, exit_code=0)
    assert lifecycle.final_status(_execution(), stopped)[0] == Status.SUCCEEDED
    failed = TaskState(ref="r", phase=TaskPhase.STOPPED, exit_code=3)
    assert lifecycle.final_status(_execution(), failed) == (Status.FAILED, "exited with code 3")
    assert lifecycle.final_status(_execution(stop_requested="timeout"), failed)[0] == Status.TIMED_OUT
    assert lifecycle.final_status(_execution(stop_requested="cancel"), failed)[0] == Status.CANCELLED
    oom = TaskState(ref="r", phase=TaskPhase.STOPPED, exit_code=137, reason="out of memory")
    assert lifecycle.final_status(_execution(), oom) == (Status.FAILED, "out of memory")
    gone = TaskState(ref="r", phase=TaskPhase.UNKNOWN)
    assert lifecycle.final_status(_execution(), gone)[0] == Status.LOST
    not_started = TaskState(ref="r", phase=TaskPhase.STOPPED, failed_to_start=True, reason="image not found")
    assert lifecycle.final_status(_execution(), not_started) == (Status.FAILED, "image not found")


def test_cli_exit_codes() -> None:
    assert lifecycle.cli_exit_code(_execution(status=Status.SUCCEEDED, exit_code=0)) == 0
    assert lifecycle.cli_exit_code(_execution(status=Status.FAILED, exit_code=3)) == 3
    assert lifecycle.cli_exit_code(_execution(status=Status.TIMED_OUT, exit_code=143)) == 124
    assert lifecycle.cli_exit_code(_execution(status=Status.LOST)) == 125
