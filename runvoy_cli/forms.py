"""click parameter types for the accepted forms of runvoy_core/inputs.py.

Every option and argument of every command declares its form through its click type: a ``FormType`` here,
a ``click.Choice``, a bounded ``click.IntRange`` or a flag (tests/cli/test_cli_inputs_properties.py checks it
from click's own command objects). A value outside its form is refused while the command line is parsed,
before anything is done, with a message naming the option and the accepted form, and exit code 125
(decision 0912; 2 stays with click's own usage errors).
"""

from __future__ import annotations

import re
from typing import IO, Any

import click

from runvoy_core import inputs
from runvoy_core.inputs import Form

EXIT_BAD_VALUE = 125


class BadValue(click.ClickException):
    """A value runvoy checked and refused: ``error: --flag: ...`` and a hint, exit 125."""

    exit_code = EXIT_BAD_VALUE

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=True)
        click.echo(f"hint: {self.hint}", err=True)


def param_label(param: click.Parameter | None, ctx: click.Context | None = None) -> str:
    if isinstance(param, click.Option):
        flag = max(param.opts, key=len)
        from_env = (
            ctx is not None
            and param.name is not None
            and ctx.get_parameter_source(param.name) == click.core.ParameterSource.ENVIRONMENT
        )
        if from_env and isinstance(param.envvar, str):
            return f"{flag} (from {param.envvar})"
        return flag
    if param is not None and param.name:
        return (param.human_readable_name or param.name).upper()
    return "value"


def bad_value(ctx: click.Context | None, param: click.Parameter | None, problem: str, form: Form) -> BadValue:
    command = ctx.command_path if ctx is not None else "runvoy"
    expected = "" if form.text in problem else f"expected {form.text}; "
    return BadValue(f"{param_label(param, ctx)}: {problem}", hint=f"{expected}see: {command} --help")


class FormType(click.ParamType[Any, Any]):
    """A string checked against a Form; the text is passed on unchanged (the API parses it again)."""

    def __init__(self, form: Form, metavar: str | None = None, complete: str | None = None) -> None:
        self.form = form
        self.name = form.name
        self._metavar = metavar
        self._complete = complete
        """The kind of value the shell completes (runvoy_cli/commands/completion.py), if any."""

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        if self._complete is None:
            return super().shell_complete(ctx, param, incomplete)
        from runvoy_cli.commands.completion import complete_value

        return complete_value(self._complete, ctx, incomplete)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        return self._metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            self.form.parse(value)
        except ValueError as exc:
            raise bad_value(ctx, param, str(exc), self.form) from None
        return value


class IntRange(click.IntRange):
    """click's bounded integer, ASCII digits only (``int()`` alone takes '١' and '５' as digits). Out of
    range stays click's usage error, exit 2 (decision 0912)."""

    def __init__(self, min: int, max: int) -> None:
        super().__init__(min=min, max=max)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"\s*[+-]?[0-9]{1,30}\s*", value, re.ASCII):
            self.fail(f"{value!r} is not a whole number written with the digits 0-9", param, ctx)
        return super().convert(value, param, ctx)


DURATION_TIMEOUT = FormType(inputs.RUN_TIMEOUT)
STOP_GRACE = FormType(inputs.STOP_GRACE)
LOCK_TIMEOUT = FormType(inputs.LOCK_TIMEOUT)
WAIT_TIMEOUT = FormType(inputs.WAIT_TIMEOUT)
SINCE = FormType(inputs.SINCE)
ESTIMATE_DURATION = FormType(inputs.ESTIMATE_DURATION)
CPU = FormType(inputs.CPU)
MEMORY = FormType(inputs.MEMORY)
PROVIDER = FormType(inputs.PROVIDER, complete="providers")
PROFILE = FormType(inputs.PROFILE, complete="profiles")
REGION = FormType(inputs.REGION)
IMAGE = FormType(inputs.IMAGE)
LOCK_NAME = FormType(inputs.LOCK_NAME, complete="locks")
LOCK_REF = FormType(inputs.LOCK_REF, complete="locks")
EXECUTION_ID = FormType(inputs.EXECUTION_ID, complete="executions")
SECRET_NAME = FormType(inputs.SECRET_NAME)
ENV_PAIR = FormType(inputs.ENV_PAIR)
LABEL_PAIR = FormType(inputs.LABEL_PAIR)
COMMAND_WORD = FormType(inputs.COMMAND_WORD)
PATH = FormType(inputs.PATH)
PLAYBOOK = FormType(inputs.PATH, complete="playbooks")
GREP = FormType(inputs.GREP)
BUDGET_NAME = FormType(inputs.BUDGET_NAME)
AMOUNT = FormType(inputs.AMOUNT)
ALERT_AT = FormType(inputs.ALERT_AT)
SCOPE = FormType(inputs.SCOPE)
CURRENCY = FormType(inputs.CURRENCY)
PROVIDER_SETTING = FormType(inputs.PROVIDER_SETTING)
AUDIT_TIME = FormType(inputs.AUDIT_TIME, metavar="DURATION|DATE")
AUDIT_ANCHOR = FormType(inputs.AUDIT_ANCHOR, metavar="SEQ:HASH")
USER_NAME = FormType(inputs.USER_NAME, metavar="NAME")
TEAM = FormType(inputs.TEAM, metavar="TEAM")
KEY_NAME = FormType(inputs.KEY_NAME, metavar="NAME")
KEY_ID = FormType(inputs.KEY_ID, metavar="KEY_ID")
KEY_EXPIRY = FormType(inputs.KEY_EXPIRY, metavar="DURATION")
KEY_OVERLAP = FormType(inputs.KEY_OVERLAP, metavar="DURATION")
POLICY_NAME = FormType(inputs.POLICY_NAME, metavar="NAME")
POLICY_PATTERN = FormType(inputs.POLICY_PATTERN, metavar="PATTERN")


def check_argv(argv: list[str]) -> None:
    """Refuse a command line that is not valid text before parsing it (a non-UTF-8 byte arrives as a lone
    surrogate, which nothing downstream can store or print)."""
    for position, arg in enumerate(argv, start=1):
        if any("\ud800" <= ch <= "\udfff" for ch in arg):
            raise BadValue(
                f"argument {position} ({arg!r}) is not valid UTF-8 text",
                hint="runvoy takes UTF-8 arguments; re-encode the value (e.g. with iconv)",
            )
