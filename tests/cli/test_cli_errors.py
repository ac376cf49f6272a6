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
        (["run", "--env", "NOEQUALS", "true"], 125, ["--env: 'NOEQUALS'", "NAME=VALUE"]),
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


# -- issue 12, defect 6: the inputs that ended in an internal error or were silently accepted ------------------


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["run", "--timeout", "99999999999999999d", "true"], 125, ["--timeout", "0.1s to 30d"]),
        (["run", "--stop-grace", "99999999999999999d", "true"], 125, ["--stop-grace"]),
        (["run", "--timeout", "５s", "true"], 125, ["--timeout"]),
        (["run", "--timeout", "nan", "true"], 125, ["--timeout"]),
        (["run", "--cpu", "١", "true"], 125, ["--cpu"]),
        (["run", "--cpu", "1e9", "true"], 125, ["--cpu", "16"]),
        (["run", "--cpu", "17", "true"], 125, ["--cpu"]),
        (["run", "--memory", "1e30GiB", "true"], 125, ["--memory", "120GiB"]),
        (["run", "--memory", "121GiB", "true"], 125, ["--memory"]),
        (["run", "--provider", "", "true"], 125, ["--provider", "''"]),
        (["--provider", "", "list"], 125, ["--provider"]),
        (["run", "--region", "eu-west-1", "true"], 125, ["local provider", "region"]),
        (["run", "--lock-timeout", "5s", "true"], 125, ["--lock-timeout needs --lock"]),
        (["run", "--on-conflict", "wait", "true"], 125, ["--on-conflict needs --lock"]),
        (["run", "--lock-slots", "2", "true"], 125, ["--lock-slots needs --lock"]),
        (["run", "--label", "k=\udcff", "true"], 125, ["--label", "UTF-8"]),
        (["run", "\udcff"], 125, ["COMMAND", "UTF-8"]),
        (["run", "--lock", "x\n", "true"], 125, ["--lock", "control character"]),
        (["run", "--env", "A=\x00", "true"], 125, ["--env", "NUL"]),
        (["logs", "abc", "--tail", "99999999999999999999"], 2, ["--tail"]),
        (["logs", "abc", "--tail", "١"], 2, ["--tail"]),
        (["list", "--since", "99999999999d"], 125, ["--since", "3650d"]),
        (["list", "--limit", "５"], 2, ["--limit"]),
        (["wait", "abc", "--timeout", "1e400"], 125, ["--timeout"]),
        (["cost", "report", "--since", "99999999999d"], 125, ["--since"]),
        (["cost", "estimate", "--duration", "99999999999d"], 125, ["--duration"]),
        (["cost", "estimate", "--runs-per-day", "99999999999999999999"], 2, ["--runs-per-day"]),
        (["budget", "set", "b", "--amount", "nan"], 125, ["--amount"]),
        (["budget", "set", "b", "--amount", "١"], 125, ["--amount"]),
        (["budget", "set", "b", "--amount", "5", "--currency", "dollars"], 125, ["--currency"]),
        (["locks", "status", "bad name!"], 125, ["NAME", "lock name"]),
        (["status", "not an id"], 125, ["ID"]),
    ],
)
def test_hostile_inputs_get_a_clean_answer(
    invoke: Invoke, clean_error: CleanError, args: list[str], code: int, needles: list[str]
) -> None:
    clean_error(invoke(*args), code, *needles)


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("lock_lease = nan\n", "lock_lease"),
        ("lock_lease = inf\n", "lock_lease"),
        ("poll_interval_max = -1\n", "poll_interval_max"),
        ('start_timeout = "99999999999d"\n', "start_timeout"),
        ("[notify]\nwebhook_timeout = nan\n", "notify.webhook_timeout"),
        ('provider = ""\n', "provider"),
        ("a = " + "[" * 10000 + "]" * 10000 + "\n", "levels deep"),
        ("[" + ".".join(["a"] * 10000) + "]\n", "levels deep"),
        ("[providers.aws]\nconnect_timeout = nan\n", "connect_timeout"),
        ("[providers.local]\nshell = 1e400\n", "shell"),
    ],
)
def test_config_values_are_refused_by_validate_and_at_use(
    invoke: Invoke, clean_error: CleanError, tmp_path: Path, config: str, needle: str
) -> None:
    import os

    Path(os.environ["RUNVOY_CONFIG"]).write_text(config, encoding="utf-8")
    clean_error(invoke("config", "validate"), 125, needle)
    if "providers" not in config:
        clean_error(invoke("run", "--lock", "l", "true"), 125, needle)


def test_a_duplicate_key_in_a_playbook_is_refused(
    invoke: Invoke, clean_error: CleanError, tmp_path: Path
) -> None:
    book = tmp_path / "p.yaml"
    book.write_text("timeout: 10m\nsteps: [{run: 'true'}]\ntimeout: 10h\n", encoding="utf-8")
    clean_error(invoke("run", "-f", str(book)), 125, "'timeout' is given twice")


def test_placement_the_local_provider_cannot_honour_is_refused(
    invoke: Invoke, clean_error: CleanError
) -> None:
    import platform

    other = "x86_64" if platform.machine().lower() in ("arm64", "aarch64") else "arm64"
    clean_error(invoke("run", "--arch", other, "true"), 125, other)
    assert invoke("run", "--arch", "x86_64" if other == "arm64" else "arm64", "true").code == 0


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda rv: rv.run("true", timeout=float("nan")), "timeout"),
        (lambda rv: rv.run("true", timeout="99999999999999999d"), "timeout"),
        (lambda rv: rv.run("true", cpu=1e9), "cpu"),
        (lambda rv: rv.run("true", memory="1e30GiB"), "memory"),
        (lambda rv: rv.run("true", lock_timeout="5s"), "needs a lock"),
        (lambda rv: rv.run("true", on_conflict="wait"), "needs a lock"),
        (lambda rv: rv.run("true", labels={"k": "\udcff"}), "labels"),
        (lambda rv: rv.run("true", region="eu-west-1"), "region"),
        (lambda rv: rv.run(["echo", "a\x00b"]), "argv"),
        (lambda rv: rv.wait("ffff", timeout=float("inf")), "timeout"),
        (lambda rv: list(rv.logs("ffff", tail=10**30)), "tail"),
        (lambda rv: rv.list(limit=-1), "limit"),
    ],
)
def test_the_python_api_refuses_the_same_values(call: Callable[[Runvoy], Any], needle: str) -> None:
    from runvoy_core.errors import RunvoyError

    with pytest.raises(RunvoyError, match=needle) as refused:
        call(Runvoy())
    assert refused.value.exit_code == 125
