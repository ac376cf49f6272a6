"""Bad input gives one line of error, a hint and the right exit code; never a traceback.

Exit codes: 2 for the parser's own usage errors (unknown option, missing argument, bad choice); 125 for
values runvoy rejects and when runvoy cannot do it (unknown provider, unknown id, broken config), as in
docs/decisions/0004 and 0912.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runvoy_core.api import Runvoy
from runvoy_core.models import Execution, ExecutionRequest, Status

Invoke = Callable[..., Any]
CleanError = Callable[..., None]


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["run", "--provider", "nosuch", "true"], 125, ["unknown provider 'nosuch'", "local)"]),
        (["--provider", "nosuch", "list"], 125, ["unknown provider 'nosuch'"]),
        (["run", "--memory", "lots", "true"], 125, ["--memory", "'lots'", "512MiB"]),
        (["run", "--timeout", "-1", "true"], 125, ["--timeout", "'-1'", "positive duration"]),
        (["run", "--timeout", "soon", "true"], 125, ["--timeout"]),
        (["run", "--cpu", "fast", "true"], 125, ["--cpu", "vCPU"]),
        (["run", "--env", "NOEQUALS", "true"], 125, ["--env 'NOEQUALS'", "NAME=VALUE"]),
        (["run", "--env", "1BAD=x", "true"], 125, ["environment variable name '1BAD'"]),
        (["run", "--label", "Team=x", "true"], 125, ["label key 'Team'"]),
        (["run", "--lock", "bad name!", "true"], 125, ["lock name"]),
        (["run", "-f", "no-such-playbook.yaml"], 125, ["playbook file 'no-such-playbook.yaml' not found"]),
        (["run", "--spot", "true"], 125, ["does not support --spot"]),
        (["run", "--image", "alpine", "true"], 125, ["image"]),
        (["status", "ffffffffffff"], 125, ["no execution 'ffffffffffff'", "runvoy list"]),
        (["logs", "ffff"], 125, ["no execution 'ffff'"]),
        (["kill", "ffff"], 125, ["no execution 'ffff'"]),
        (["wait", "ffff"], 125, ["no execution 'ffff'"]),
        (["list", "--since", "yesterday"], 125, ["--since"]),
    ],
)
def test_bad_input_is_one_clean_line(
    invoke: Invoke, clean_error: CleanError, args: list[str], code: int, needles: list[str]
) -> None:
    clean_error(invoke(*args), code, *needles)


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["run", "--bogus", "true"],
        ["run", "--on-conflict", "maybe", "--lock", "x", "true"],
        ["status"],
        ["list", "--status", "DONE"],
        ["logs", "abc", "--tail", "-3"],
    ],
)
def test_usage_errors_exit_2(invoke: Invoke, args: list[str]) -> None:
    result = invoke(*args)
    assert result.code == 2
    assert "Traceback" not in result.err and "Error:" in result.err


def test_command_and_playbook_together_is_a_usage_error(invoke: Invoke, tmp_path: Path) -> None:
    book = tmp_path / "p.yaml"
    book.write_text("steps: [{run: 'true'}]\n")
    result = invoke("run", "-f", str(book), "echo also")
    assert result.code == 2 and "not both" in result.err


def test_ambiguous_prefix(invoke: Invoke, clean_error: CleanError) -> None:
    rv = Runvoy()
    for suffix in ("01", "02"):
        rv.store.create(
            Execution(
                id=f"abcdef0000{suffix}",
                provider="local",
                request=ExecutionRequest(command="true"),
                status=Status.SUCCEEDED,
            )
        )
    clean_error(
        invoke("status", "abcdef"), 125, "'abcdef' matches more than one execution", "more characters"
    )
    assert invoke("status", "abcdef000002", "--json").code == 0


@pytest.mark.parametrize("command", [["status", "abc"], ["run", "true"], ["list"], ["config", "show"]])
def test_corrupt_config_file(
    invoke: Invoke, clean_error: CleanError, tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "config.toml").write_text('provider = "local"\n[providers.local\nshell = 1\n')
    clean_error(invoke(*command), 125, "is not valid TOML", str(tmp_path / "config.toml"))


def test_unknown_setting_names_the_field(invoke: Invoke, clean_error: CleanError, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("providr = 'local'\n")
    clean_error(invoke("list"), 125, "providr: unknown setting")


def test_invalid_yaml_playbook(invoke: Invoke, clean_error: CleanError, tmp_path: Path) -> None:
    book = tmp_path / "broken.yaml"
    book.write_text("steps:\n  - run: echo hi\n   name: x\n")
    clean_error(invoke("run", "-f", str(book)), 125, "is not valid YAML at line 3")


def test_playbook_schema_error_names_the_field(
    invoke: Invoke, clean_error: CleanError, tmp_path: Path
) -> None:
    book = tmp_path / "p.yaml"
    book.write_text("memory: 1GiB\nsteps:\n  - name: a\n    rn: echo typo\n")
    clean_error(
        invoke("run", "-f", str(book)), 125, "steps.0.run: Field required", "steps.0.rn: unknown setting"
    )
