"""Playbooks: a YAML file of steps that runs as ONE execution.

    name: nightly-etl
    image: python:3.12
    cpu: 1
    memory: 2GiB
    timeout: 30m
    lock: nightly-etl
    env: {STAGE: prod}
    steps:
      - name: fetch
        run: python fetch.py
        timeout: 10m
      - name: load
        run: |
          python load.py --since yesterday
          python check.py
        env: {BATCH: "500"}

The steps become one POSIX shell script (the execution's command): each step runs in its own shell with
``set -e`` (so a failing line fails the step, and a step's ``cd``/variables do not leak into the next), a banner
on stderr before and after it, and an optional per-step timeout through ``timeout(1)``. The first failing step
ends the run with that step's exit code, unless it says ``continue_on_error: true``. One execution means one
container start, one lock, one record, one log stream and one cost — see docs/decisions/0911-cli-playbooks-one-execution.md.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

from runvoy_core import inputs
from runvoy_core.errors import UsageError, ValidationFailed
from runvoy_core.models import ExecutionRequest, is_reserved_env_name

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHELL = re.compile(r"^[A-Za-z0-9_./-]+$")
BANNER = "==>"
KILL_AFTER = 10  # seconds between a step's timeout (SIGTERM) and the SIGKILL of timeout(1)


def _scalar_to_text(value: Any) -> Any:
    """YAML turns `PORT: 8080` into an int and `DEBUG: yes` into a bool; the environment only has strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _env_values(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scalar_to_text(v) for k, v in value.items()}
    return value


Env = Annotated[dict[str, str], BeforeValidator(_env_values)]
StepTimeout = Annotated[float, BeforeValidator(inputs.STEP_TIMEOUT.parse)]
MAX_PLAYBOOK_BYTES = 1024 * 1024


def _form_check(form: inputs.Form) -> Callable[[str | None], str | None]:
    """A playbook option is kept as text (the request parses it) but checked now against its form."""

    def check(value: str | None) -> str | None:
        if value is not None:
            form.parse(value)
        return value

    return check


def _text_of(form: inputs.Form) -> tuple[BeforeValidator, AfterValidator]:
    return BeforeValidator(_scalar_to_text), AfterValidator(_form_check(form))


ImageText = Annotated[str | None, *_text_of(inputs.IMAGE)]
CpuText = Annotated[str | None, *_text_of(inputs.CPU)]
MemoryText = Annotated[str | None, *_text_of(inputs.MEMORY)]
RegionText = Annotated[str | None, *_text_of(inputs.REGION)]
TimeoutText = Annotated[str | None, *_text_of(inputs.RUN_TIMEOUT)]
StopGraceText = Annotated[str | None, *_text_of(inputs.STOP_GRACE)]
LockText = Annotated[str | None, *_text_of(inputs.LOCK_NAME)]
LockTimeoutText = Annotated[str | None, *_text_of(inputs.LOCK_TIMEOUT)]
PathText = Annotated[str | None, *_text_of(inputs.PATH)]
TitleText = Annotated[str | None, AfterValidator(_form_check(inputs.LABEL_VALUE))]


def _check_env_names(env: dict[str, str]) -> dict[str, str]:
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if is_reserved_env_name(name):  # a step's env is exported in the script: it would shadow runvoy's
            raise ValueError(
                f"environment variable {name!r}: names starting with RUNVOY_ are set by runvoy itself"
            )
    for value in env.values():
        inputs.ENV_VALUE.parse(value)
    return env


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        inputs.LABEL_KEY.parse(key)
        inputs.LABEL_VALUE.parse(value)
    return labels


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TitleText = None
    run: Annotated[str, AfterValidator(_form_check(inputs.COMMAND_WORD))] = Field(
        description="shell text; several lines are fine"
    )
    env: Env = Field(default_factory=dict)
    timeout: StepTimeout | None = None
    workdir: PathText = None
    continue_on_error: bool = False

    @field_validator("run")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("run is empty")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        return _check_env_names(env)


class Playbook(BaseModel):
    """A playbook file. Top-level keys are the execution's options; ``steps`` is what it runs."""

    model_config = ConfigDict(extra="forbid")

    name: TitleText = None
    description: Annotated[str | None, AfterValidator(_form_check(inputs.COMMAND_WORD))] = None
    image: ImageText = None
    image_check: StrictBool | None = None
    """false: do not ask the image's registry before the run (``--no-image-check``); the policy still applies."""
    cpu: CpuText = None
    memory: MemoryText = None
    arch: Literal["x86_64", "arm64", "amd64", "aarch64"] | None = None
    spot: bool | None = None
    region: RegionText = None
    env: Annotated[Env, AfterValidator(_check_env_names)] = Field(default_factory=dict)
    secrets: list[Annotated[str, AfterValidator(_form_check(inputs.SECRET_NAME))]] = Field(
        default_factory=list
    )
    timeout: TimeoutText = None
    stop_grace: StopGraceText = None
    lock: LockText = None
    on_conflict: Literal["fail", "wait", "cancel", "queue"] | None = None
    lock_timeout: LockTimeoutText = None
    lock_slots: int | None = Field(default=None, ge=1, le=100)
    labels: Annotated[Env, AfterValidator(_check_labels)] = Field(default_factory=dict)
    workdir: PathText = None
    shell: str = "/bin/sh"
    steps: list[Step] = Field(min_length=1)

    @field_validator("shell")
    @classmethod
    def _shell(cls, value: str) -> str:
        if not _SHELL.fullmatch(value):
            raise ValueError(f"shell {value!r} must be a program name or path such as /bin/sh or bash")
        return value

    # -- what it runs ---------------------------------------------------------------------------------------
    def step_title(self, index: int) -> str:
        step = self.steps[index]
        return step.name or step.run.strip().splitlines()[0][:60]

    def script(self) -> str:
        """The POSIX shell script that runs the steps in order (the execution's command)."""
        total = len(self.steps)
        lines = [
            f"# runvoy playbook {' '.join((self.name or '').split())}: {total} step(s); see docs/playbooks.md",
            "__rv_now() { date +%s 2>/dev/null || echo 0; }",
            f"__rv_total={total}",
            f"__rv_shell={shlex.quote(self.shell)}",
            _STEP_FUNCTION,
        ]
        for index, step in enumerate(self.steps):
            body = ["set -e"]
            body += [f"export {k}={shlex.quote(v)}" for k, v in step.env.items()]
            if step.workdir:
                body.append(f"cd {shlex.quote(step.workdir)}")
            body.append(step.run.rstrip("\n"))
            timeout = math.ceil(step.timeout) if step.timeout else 0
            args = [
                str(index + 1),
                shlex.quote(self.step_title(index)),
                str(timeout),
                "1" if step.continue_on_error else "0",
                shlex.quote("\n".join(body)),
            ]
            lines.append("__rv_step " + " ".join(args))
        lines.append(
            f"printf '%s playbook finished: %s step(s) ok\\n' {shlex.quote(BANNER)} \"$__rv_total\" >&2"
        )
        return "\n".join(lines) + "\n"

    def request_options(self) -> dict[str, Any]:
        """The keyword options of ``Runvoy.run`` that this playbook sets (None values left out)."""
        labels = dict(self.labels)
        if self.name:
            labels.setdefault("playbook", self.name)
        options: dict[str, Any] = {
            "image": self.image,
            "image_check": self.image_check,
            "cpu": self.cpu,
            "memory": self.memory,
            "arch": self.arch,
            "spot": self.spot,
            "region": self.region,
            "env": dict(self.env) or None,
            "secrets": list(self.secrets) or None,
            "timeout": self.timeout,
            "stop_grace": self.stop_grace,
            "lock": self.lock,
            "on_conflict": self.on_conflict,
            "lock_timeout": self.lock_timeout,
            "lock_slots": self.lock_slots,
            "labels": labels or None,
            "workdir": self.workdir,
        }
        return {k: v for k, v in options.items() if v is not None}

    def to_request(self, **overrides: Any) -> ExecutionRequest:
        """The ExecutionRequest for ``Runvoy.run``; ``overrides`` win over the file (env and labels merge)."""
        from runvoy_core.api import build_request

        options = merge_options(self.request_options(), overrides)
        options.pop("image_check", None)  # how ``Runvoy.run`` checks the image, not part of the request
        return build_request(self.script(), **options)


def merge_options(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Options from the command line over options from the file; env, labels and secrets are merged."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None or value == {} or value == []:
            continue
        if key in ("env", "labels") and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        elif key == "secrets" and isinstance(merged.get(key), list):
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        else:
            merged[key] = value
    return merged


def _unique_key_loader() -> Any:
    """PyYAML's SafeLoader, refusing a mapping that gives a key twice (the YAML spec says keys are unique;
    PyYAML keeps the last one silently, so `timeout: 10m` then `timeout: 10h` would pass unseen)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *defaults` may be overridden by the keys given next to it
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # an unhashable key: the base loader reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"key {key!r} is given twice",
                        key_node.start_mark,
                    )
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _check_event_depth(text: str, source: str) -> None:
    """Refuse deep nesting from PyYAML's event stream, which is read without recursion: building the nodes
    recurses, and takes seconds to reach Python's recursion limit on a small hostile file."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > inputs.MAX_NESTING:
                raise UsageError(
                    f"playbook {source} nests more than {inputs.MAX_NESTING} levels deep",
                    hint="see docs/playbooks.md for the format",
                )
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def parse_playbook(text: str, *, source: str = "<playbook>", default_name: str | None = None) -> Playbook:
    import yaml

    problem = inputs.text_problem(text, allow_newlines=True)
    if problem:
        raise UsageError(f"playbook {source} {problem}", hint="a playbook is UTF-8 YAML text")
    try:
        _check_event_depth(text, source)
        data = yaml.load(text, Loader=_unique_key_loader())
    except RecursionError:
        raise UsageError(
            f"playbook {source} nests more than {inputs.MAX_NESTING} levels deep",
            hint="see docs/playbooks.md for the format",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(
            f"playbook {source} is not valid YAML{where}: {problem}",
            hint="check the indentation and quoting; see docs/playbooks.md",
        ) from None
    if inputs.nesting_depth(data) > inputs.MAX_NESTING:
        raise UsageError(
            f"playbook {source} nests more than {inputs.MAX_NESTING} levels deep "
            f"(or holds more than {inputs.MAX_NODES} values)",
            hint="see docs/playbooks.md for the format",
        )
    if isinstance(data, list):
        # a bare list of steps is a playbook with no options
        data = {"steps": data}
    if not isinstance(data, dict):
        raise UsageError(
            f"playbook {source} must be a mapping with a 'steps' list",
            hint="see docs/playbooks.md for the format",
        )
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        from runvoy_core.config import describe_validation_error

        raise ValidationFailed(
            f"playbook {source}: {describe_validation_error(exc)}",
            hint="see docs/playbooks.md for the keys a playbook and a step accept",
        ) from None
    if playbook.name is None and default_name:
        playbook.name = default_name
    return playbook


def load_playbook(path: str | Path) -> Playbook:
    return parse_playbook(
        read_playbook_file(path), source=str(path), default_name=Path(path).expanduser().stem
    )


def read_playbook_file(path: str | Path) -> str:
    """A playbook file's text (``Runvoy.run_playbook`` takes the text, so a server sees the playbook)."""
    file = Path(path).expanduser()
    try:
        if file.stat().st_size > MAX_PLAYBOOK_BYTES:
            raise UsageError(
                f"playbook file {str(path)!r} is larger than {MAX_PLAYBOOK_BYTES // 1024} KiB",
                hint="a playbook lists steps; keep large scripts in files the steps run",
            )
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"playbook file {str(path)!r} not found", hint="check the path given to -f/--file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read playbook file {str(path)!r}: {reason}") from None
    return text


# The step runner inside the generated script. Plain POSIX sh (dash, busybox ash, bash): no `local`, no arrays.
# $1 index, $2 title, $3 timeout seconds (0: none), $4 continue on error (1/0), $5 the step's shell text.
_STEP_FUNCTION = r"""__rv_step() {
    printf '==> [%s/%s] %s\n' "$1" "$__rv_total" "$2" >&2
    __rv_t0=$(__rv_now)
    if [ "$3" != 0 ] && command -v timeout >/dev/null 2>&1; then
        timeout -k __KILL__ "$3" "$__rv_shell" -c "$5"
    else
        if [ "$3" != 0 ]; then printf '==> warning: timeout(1) not found; step timeout not enforced\n' >&2; fi
        "$__rv_shell" -c "$5"
    fi
    __rv_rc=$?
    __rv_dt=$(( $(__rv_now) - __rv_t0 ))
    if [ "$__rv_rc" -eq 0 ]; then
        printf '==> [%s/%s] %s: ok (%ss)\n' "$1" "$__rv_total" "$2" "$__rv_dt" >&2
        return 0
    fi
    if [ "$3" != 0 ] && [ "$__rv_rc" -eq 124 ]; then
        __rv_why="timed out after $3s"
    else
        __rv_why="failed with exit code $__rv_rc"
    fi
    if [ "$4" = 1 ]; then
        printf '==> [%s/%s] %s: %s (continue_on_error: going on)\n' "$1" "$__rv_total" "$2" "$__rv_why" >&2
        return 0
    fi
    printf '==> [%s/%s] %s: %s; stopping the playbook\n' "$1" "$__rv_total" "$2" "$__rv_why" >&2
    exit "$__rv_rc"
}""".replace("__KILL__", str(KILL_AFTER))
