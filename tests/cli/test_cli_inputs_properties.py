"""Every option and argument of every command, driven with values inside and outside its documented form.

The surface is read from click's own command objects, so an option added without a declared form (a
``runvoy_cli.forms.FormType``, a ``click.Choice``, a bounded ``click.IntRange`` or a flag) fails
``test_every_parameter_declares_its_form``, and one whose form has no generator here fails the property test.

Asserted for every generated value: no internal error, no traceback, an exit code among the documented ones
(decision 0912), and for a value outside the form: never 0, the option named in the message.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runvoy_cli.forms import FormType, IntRange
from runvoy_cli.main import COMMANDS, cli
from runvoy_core import inputs

from .conftest import RUNVOY

DOCUMENTED_EXIT_CODES = {0, 1, 2, 75, 124, 125}
"""0912: 2 usage, 125 refused or failed, 75 lock held, 124 timeout; 1 is `kill` still stopping / an abort;
0 and the command's own code (the generated commands are `true`)."""

# -- the surface -----------------------------------------------------------------------------------------------


def _commands() -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(cli)
    yield (), cli
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                yield (name, sub.name or ""), sub
        else:
            yield (name,), command


def _declared(param: click.Parameter) -> bool:
    if isinstance(param, click.Option) and (param.is_flag or param.count):
        return True
    kind = param.type
    if isinstance(kind, FormType | click.Choice):
        return True
    # runvoy's IntRange: bounded and ASCII digits only (click's own takes '١' for 1)
    return isinstance(kind, IntRange) and kind.min is not None and kind.max is not None


SURFACE = [
    (path, param)
    for path, command in _commands()
    for param in command.params
    if not (isinstance(param, click.Option) and (param.is_flag or param.count))
]


def test_every_parameter_declares_its_form() -> None:
    undeclared = [
        f"{' '.join(('runvoy', *path))} {param.name}"
        for path, command in _commands()
        for param in command.params
        if not _declared(param)
    ]
    assert not undeclared, f"options without a declared form (see runvoy_cli/forms.py): {undeclared}"


# -- values inside each form (cheap to act on: ids and names that do not exist, commands that are `true`) ---


def _regex(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(re.compile(pattern, re.ASCII), fullmatch=True)


def _durations(form: inputs.Form, low: float, high: float) -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(int(max(low, 1)), int(min(high, 3600))).map(lambda n: f"{n}s"),
        st.integers(1, int(high // 60)).map(lambda n: f"{n}m"),
        st.sampled_from([f"{int(max(low, 1))}s", "1m30s" if high >= 90 else "1s"]),
    )


INSIDE: dict[str, st.SearchStrategy[str]] = {
    inputs.RUN_TIMEOUT.name: _durations(inputs.RUN_TIMEOUT, 0.1, 30 * 86400),
    inputs.STOP_GRACE.name: _durations(inputs.STOP_GRACE, 0.1, 3600),
    inputs.LOCK_TIMEOUT.name: _durations(inputs.LOCK_TIMEOUT, 0.1, 7 * 86400),
    inputs.WAIT_TIMEOUT.name: st.sampled_from(["0.1s", "100ms", "0.2"]),
    inputs.SINCE.name: _durations(inputs.SINCE, 1, 3650 * 86400),
    inputs.ESTIMATE_DURATION.name: _durations(inputs.ESTIMATE_DURATION, 1, 30 * 86400),
    inputs.CPU.name: st.one_of(
        st.integers(1, 16000).map(lambda m: f"{m}m"), st.sampled_from(["0.25", "0.5", "1", "2", "4", "16"])
    ),
    inputs.MEMORY.name: st.one_of(
        st.integers(1, 120 * 1024).map(lambda n: f"{n}MiB"), st.sampled_from(["512", "2GiB", "1.5GiB"])
    ),
    inputs.PROVIDER.name: st.one_of(st.just("local"), _regex(r"[a-z][a-z0-9_-]{0,31}")),
    inputs.PROFILE.name: _regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"),
    inputs.REGION.name: _regex(r"[a-z0-9][a-z0-9-]{0,63}"),
    inputs.IMAGE.name: _regex(r"[a-z0-9]{1,20}(:[a-z0-9.]{1,10})?"),
    inputs.LOCK_NAME.name: _regex(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,40}"),
    inputs.EXECUTION_ID.name: _regex(r"[A-Za-z0-9_-]{1,64}"),
    inputs.SECRET_NAME.name: _regex(r"[A-Za-z0-9_./:-]{1,40}"),
    inputs.ENV_PAIR.name: st.tuples(_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}"), st.text(max_size=30)).map(
        lambda kv: f"{kv[0]}={kv[1]}"
    ),
    inputs.LABEL_PAIR.name: st.tuples(_regex(r"[a-z0-9][a-z0-9_.:/-]{0,20}"), _regex(r"[ -~]{0,30}")).map(
        lambda kv: f"{kv[0]}={kv[1]}"
    ),
    inputs.COMMAND_WORD.name: st.sampled_from(["true", "exit 0", ":"]),
    inputs.PATH.name: _regex(r"/nonexistent-runvoy/[a-z]{1,12}(\.yaml)?"),
    inputs.GREP.name: _regex(r"[ -~]{1,40}"),
    inputs.BUDGET_NAME.name: _regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}"),
    inputs.AMOUNT.name: st.decimals(min_value="0.01", max_value="1000000000", places=2).map(str),
    inputs.ALERT_AT.name: st.lists(st.integers(1, 1000), min_size=1, max_size=5).map(
        lambda xs: ",".join(map(str, xs))
    ),
    inputs.SCOPE.name: st.one_of(
        _regex(r"provider=[a-z]{1,10}"), _regex(r"user=[a-z]{1,10}"), _regex(r"label=[a-z]{1,8}:[a-z]{1,8}")
    ),
    inputs.CURRENCY.name: _regex(r"[A-Z]{3}"),
    inputs.PROVIDER_SETTING.name: st.tuples(_regex(r"[a-z][a-z0-9_]{0,20}"), _regex(r"[ -~]{0,30}")).map(
        lambda kv: f"{kv[0]}={kv[1]}"
    ),
    # runvoy users|keys|policies (decision 1519)
    inputs.USER_NAME.name: _regex(r"[a-z][a-z0-9._@-]{0,20}"),
    inputs.TEAM.name: _regex(r"[a-z][a-z0-9-]{0,20}"),
    inputs.KEY_NAME.name: _regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}"),
    inputs.KEY_ID.name: _regex(r"[0-9a-f]{16}"),
    inputs.KEY_EXPIRY.name: st.one_of(
        st.integers(1, 17520).map(lambda n: f"{n}h"), st.sampled_from(["1h", "730d"])
    ),
    inputs.KEY_OVERLAP.name: st.one_of(
        st.integers(1, 10080).map(lambda n: f"{n}m"), st.sampled_from(["60", "7d"])
    ),
    inputs.POLICY_NAME.name: _regex(r"[a-z][a-z0-9-]{0,20}"),
    inputs.POLICY_PATTERN.name: _regex(r"[\x21-\x7e]{1,30}"),
    # runvoy audit (decision 1509)
    inputs.AUDIT_TIME.name: st.one_of(
        st.integers(1, 3650).map(lambda n: f"{n}d"),
        st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 12, 31)).map(date.isoformat),
        st.sampled_from(["2026-12-01T08:30:00Z", "2026-12-01T09:30+01:00", "90m"]),
    ),
    inputs.AUDIT_ANCHOR.name: st.tuples(st.integers(1, 10**12 - 1), _regex(r"[0-9a-f]{64}")).map(
        lambda a: f"{a[0]}:{a[1]}"
    ),
    # runvoy server (run with --check: nothing is served) and runvoy health (a port nothing listens on)
    inputs.HOST.name: st.sampled_from(["127.0.0.1", "localhost", "::1", "0.0.0.0"]),
    inputs.HEALTH_TIMEOUT.name: st.sampled_from(["1s", "500ms", "2"]),
    inputs.SERVER_URL.name: st.sampled_from(["http://127.0.0.1:9", "http://localhost:9/"]),  # refused at once
}
# LOCK_REF shares its name with LOCK_NAME; every lock name is a lock reference
assert inputs.LOCK_REF.name == inputs.LOCK_NAME.name

# -- values outside: what the adversarial run used, then anything the form refuses -----------------------------
HOSTILE = [
    "",
    " ",
    "-1",
    "0",
    "nan",
    "inf",
    "-inf",
    "1e9",
    "1e400",
    "99999999999999999d",
    "99999999999999999999",
    "١",
    "٣s",
    "５s",
    "１",
    "\udcff",
    "k=\udcff",
    "a\x00b",
    "x\n",
    "=",
    "A=\x00",
    "💥" * 300,
    "1" * 5000,
    "0.0001",
    "1e30GiB",
]


def _outside(param: click.Parameter) -> st.SearchStrategy[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        return st.text(max_size=12).filter(lambda v: v.lower() not in {c.lower() for c in kind.choices})
    if isinstance(kind, click.IntRange):
        assert kind.min is not None and kind.max is not None
        return st.one_of(
            st.integers(max_value=int(kind.min) - 1).map(str),
            st.integers(min_value=int(kind.max) + 1).map(str),
            st.sampled_from(["nan", "1.5", "١", "x", ""]),
        )
    assert isinstance(kind, FormType)
    form = kind.form

    def refused(value: str) -> bool:
        try:
            form.parse(value)
        except ValueError:
            return True
        return False

    return st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40)).filter(refused)


def _inside(param: click.Parameter) -> st.SearchStrategy[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        return st.sampled_from(list(kind.choices))
    if isinstance(kind, click.IntRange):
        assert kind.min is not None and kind.max is not None
        return st.integers(int(kind.min), int(kind.max)).map(str)
    assert isinstance(kind, FormType)
    assert kind.form.name in INSIDE, f"no generator of values inside the form {kind.form.name!r}"
    return INSIDE[kind.form.name]


# -- invoking ------------------------------------------------------------------------------------------------------

REQUIRED: dict[str, str] = {
    "execution_id": "ffffffffffff",
    "name": "nothing-here",
    "command": "true",
    "amount": "5",
    "role": "viewer",
    "team": "nothing",
    "user": "nothing-here",
    "key_id": "0123456789abcdef",
}
EXTRA: dict[tuple[str, ...], list[str]] = {
    ("cost", "refresh"): ["--from-file", "/nonexistent-runvoy/prices.json"],  # never the network
    ("server",): ["--check"],  # the configuration and readiness, never a server left running
    (): [],
}


def _argv(path: tuple[str, ...], param: click.Parameter, value: str) -> list[str]:
    command = dict(_commands())[path]
    options: list[str] = []
    arguments: list[str] = []
    for other in command.params:
        given = other is param
        if isinstance(other, click.Argument):
            arguments.append(value if given else REQUIRED[other.name or ""])
        elif given:
            options.append(f"{max(other.opts, key=len)}={value}")
        elif other.required:
            options.append(f"{max(other.opts, key=len)}={REQUIRED[other.name or '']}")
    if path == ():
        return [*options, "list"]
    return [*path, *options, *EXTRA.get(path, []), "--", *arguments]


def _invoke(argv: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, argv, prog_name="runvoy", catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"runvoy {argv!r} raised {result.exception!r}") from result.exception
    return result.exit_code, result.stderr


def _assert_answered(argv: list[str], code: int, err: str) -> None:
    assert "Traceback" not in err, (argv, err)
    assert "internal error" not in err, (argv, err)
    assert code in DOCUMENTED_EXIT_CODES, (argv, code, err)


def _label(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return (param.human_readable_name or param.name or "").upper()


PROPERTY = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


@pytest.mark.parametrize(("path", "param"), SURFACE, ids=[" ".join((*p, q.name or "")) for p, q in SURFACE])
@PROPERTY
@given(data=st.data())
def test_a_value_outside_its_form_is_refused_by_name(
    path: tuple[str, ...], param: click.Parameter, data: st.DataObject
) -> None:
    value = data.draw(_outside(param), label="value")
    argv = _argv(path, param, value)
    code, err = _invoke(argv)
    _assert_answered(argv, code, err)
    assert code in (2, 125), (argv, code, err)
    if code == 125:
        assert _label(param) in err.splitlines()[0], (argv, err)


def _check_inside(path: tuple[str, ...], param: click.Parameter, data: st.DataObject) -> None:
    value = data.draw(_inside(param), label="value")
    argv = _argv(path, param, value)
    code, err = _invoke(argv)
    _assert_answered(argv, code, err)
    if code in (2, 125):
        # refused for another reason than its form (unknown id or provider, no lock, ...), never the form
        assert not err.startswith(f"error: {_label(param)}: "), (argv, err)


# each example of `run` starts a real local run of `true`: fewer of them
RUN_SURFACE = [(p, q) for p, q in SURFACE if p == ("run",)]
OTHER_SURFACE = [(p, q) for p, q in SURFACE if p != ("run",)]


@pytest.mark.parametrize(
    ("path", "param"), OTHER_SURFACE, ids=[" ".join((*p, q.name or "")) for p, q in OTHER_SURFACE]
)
@PROPERTY
@given(data=st.data())
def test_a_value_inside_its_form_gets_an_answer(
    path: tuple[str, ...], param: click.Parameter, data: st.DataObject
) -> None:
    _check_inside(path, param, data)


@pytest.mark.parametrize(
    ("path", "param"), RUN_SURFACE, ids=[" ".join((*p, q.name or "")) for p, q in RUN_SURFACE]
)
@settings(PROPERTY, max_examples=2)
@given(data=st.data())
def test_a_run_option_inside_its_form_gets_an_answer(
    path: tuple[str, ...], param: click.Parameter, data: st.DataObject
) -> None:
    _check_inside(path, param, data)


# -- the real console script: arguments that are not UTF-8 -----------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [b"run", b"\xff"],
        [b"run", b"--label", b"k=\xff", b"true"],
        [b"run", b"--", b"echo", b"\xfe\xff"],
        [b"--profile", b"\xff", b"list"],
        [b"locks", b"status", b"caf\xe9"],
    ],
)
def test_a_non_utf8_argument_is_a_clean_error(args: list[bytes]) -> None:
    done = subprocess.run(
        [os.fsencode(RUNVOY), *args], capture_output=True, timeout=60, env=os.environ.copy()
    )
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 125, err
    assert "not valid UTF-8" in err and "Traceback" not in err and "internal error" not in err, err


def test_a_state_directory_that_is_a_file_is_a_clean_error(tmp_path: Path) -> None:
    home = tmp_path / "not-a-dir"
    home.write_text("")
    for args in (["list"], ["run", "true"], ["config", "validate"]):
        done = subprocess.run(
            [RUNVOY, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "RUNVOY_HOME": str(home)},
        )
        assert done.returncode == 125, done.stderr
        assert "is not a directory" in done.stderr and "internal error" not in done.stderr, done.stderr


def test_every_option_is_in_the_reference_of_accepted_values() -> None:
    reference = (Path(__file__).resolve().parents[2] / "docs" / "inputs.md").read_text(encoding="utf-8")
    missing = [
        f"{' '.join(('runvoy', *path))} {_label(param)}"
        for path, param in SURFACE
        if f"`{_label(param)}" not in reference and f"`{param.name or ''}".upper() not in reference.upper()
    ]
    assert not missing, f"docs/inputs.md does not document: {missing}"
