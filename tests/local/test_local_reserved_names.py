"""RUNVOY_* is runvoy's (decision 0208): no user-supplied variable or secret may take such a name, on any path
(the request model, the Python API, the CLI, playbooks), and a locked run sees the fence the runner gave it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runvoy_cli.main import cli
from runvoy_core.api import Runvoy
from runvoy_core.errors import UsageError
from runvoy_core.models import ExecutionRequest
from runvoy_core.records import RecordError as ValidationError

RESERVED = ["RUNVOY_FENCE", "runvoy_fence", "Runvoy_Lock", "RUNVOY_EXECUTION_ID", "RUNVOY_FUTURE_THING"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=True, prog_name="runvoy")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", RESERVED)
def test_the_request_model_refuses_reserved_env_and_secret_names(name: str) -> None:
    with pytest.raises(ValidationError, match="RUNVOY_ are set by runvoy"):
        ExecutionRequest(command="true", env={name: "1"})
    with pytest.raises(ValidationError, match="RUNVOY_ are set by runvoy"):
        ExecutionRequest(command="true", secrets=[name])
    ExecutionRequest(command="true", env={"MY_RUNVOY_FENCE": "1"}, secrets=["NOT_RUNVOY"])  # only the prefix


@pytest.mark.parametrize("name", ["RUNVOY_FENCE", "runvoy_lock"])
def test_the_python_api_refuses_them_before_anything_runs(name: str) -> None:
    with Runvoy("local") as client:
        with pytest.raises(UsageError, match="RUNVOY_"):
            client.run("true", env={name: "1"})
        with pytest.raises(UsageError, match="RUNVOY_"):
            client.submit("true", secrets=[name])
        assert list(client.list()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--secret", "RUNVOY_FENCE"],
        ["--secret", "runvoy_fence"],
        ["--env", "RUNVOY_FENCE=1"],
        ["--env", "Runvoy_Request_Id=x"],
    ],
)
def test_the_cli_refuses_them_with_exit_125(args: list[str]) -> None:
    code, out, err = invoke("run", *args, "echo ran")
    assert code == 125, err
    assert "RUNVOY_ are set by runvoy" in err and "Traceback" not in err and "ran" not in out


@pytest.mark.parametrize(
    "playbook",
    [
        'env: {RUNVOY_FENCE: "7"}\nsteps:\n  - run: echo ran\n',
        "secrets: [runvoy_lock]\nsteps:\n  - run: echo ran\n",
        'steps:\n  - run: echo ran\n    env: {Runvoy_Fence: "1"}\n',
    ],
    ids=["playbook-env", "playbook-secrets", "step-env"],
)
def test_a_playbook_cannot_set_them(playbook: str, tmp_path: Path) -> None:
    path = tmp_path / "book.yaml"
    path.write_text(playbook)
    code, out, err = invoke("run", "-f", str(path))
    assert code == 125, err
    assert "RUNVOY_ are set by runvoy" in err and "Traceback" not in err and "ran" not in out


def test_a_locked_run_sees_the_runners_fence_whatever_the_caller_has(monkeypatch: pytest.MonkeyPatch) -> None:
    # the caller's own RUNVOY_* never reaches a run (the env rule), not even one runvoy does not set itself
    monkeypatch.setenv("RUNVOY_FENCE", "666")
    monkeypatch.setenv("RUNVOY_LOCK", "spoofed")
    monkeypatch.setenv("RUNVOY_FUTURE_THING", "spoofed")
    code, out, err = invoke(
        "run", "--lock", "db", 'echo "lock=$RUNVOY_LOCK fence=$RUNVOY_FENCE future=$RUNVOY_FUTURE_THING"'
    )
    assert code == 0, err
    [line] = out.splitlines()
    lock, fence, future = line.split()
    assert lock == "lock=db" and fence != "fence=666" and fence.removeprefix("fence=").isdigit(), line
    assert future == "future=", line
