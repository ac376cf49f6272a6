"""The data runvoy passes around and stores (pydantic v2).

Secrets appear only by *name* in a request; their values never enter a model that is stored or printed.
"""

from __future__ import annotations

import enum
import re
import secrets as _secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from runvoy_core import inputs
from runvoy_core.units import parse_cpu, parse_duration, parse_memory_mib

EXECUTION_ID_LENGTH = 12
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9_.:/-]{0,62})$")
_LOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
RESERVED_ENV_PREFIX = "RUNVOY_"


def is_reserved_env_name(name: str) -> bool:
    """RUNVOY_* (any case) is what runvoy gives the task: no user value may take such a name (decision 0208)."""
    return name.upper().startswith(RESERVED_ENV_PREFIX)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_execution_id() -> str:
    """12 lowercase hex characters (48 random bits): short enough to type, valid in every cloud's resource
    names, and abbreviable to any unique prefix."""
    return _secrets.token_hex(EXECUTION_ID_LENGTH // 2)


Money = Annotated[Decimal, PlainSerializer(lambda d: str(d), return_type=str, when_used="json")]
Cpu = Annotated[Decimal, BeforeValidator(parse_cpu), PlainSerializer(lambda d: str(d), return_type=str)]
MemoryMiB = Annotated[int, BeforeValidator(parse_memory_mib)]
Seconds = Annotated[float, BeforeValidator(parse_duration)]
# the bounded forms of docs/inputs.md (runvoy_core/inputs.py), shared by the API, the CLI and playbooks
RunTimeout = Annotated[float, BeforeValidator(inputs.RUN_TIMEOUT.parse)]
StopGrace = Annotated[float, BeforeValidator(inputs.STOP_GRACE.parse)]
LockTimeout = Annotated[float, BeforeValidator(inputs.LOCK_TIMEOUT.parse)]
StepTimeout = Annotated[float, BeforeValidator(inputs.STEP_TIMEOUT.parse)]
LockLease = Annotated[float, BeforeValidator(inputs.LOCK_LEASE.parse)]
PollIntervalMax = Annotated[float, BeforeValidator(inputs.POLL_INTERVAL_MAX.parse)]
StartTimeout = Annotated[float, BeforeValidator(inputs.START_TIMEOUT.parse)]
WebhookTimeout = Annotated[float, BeforeValidator(inputs.WEBHOOK_TIMEOUT.parse)]


class Status(enum.StrEnum):
    PENDING = "PENDING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    LOST = "LOST"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT, Status.LOST}
)
ACTIVE_STATUSES = frozenset(set(Status) - TERMINAL_STATUSES)


class Architecture(enum.StrEnum):
    X86_64 = "x86_64"
    ARM64 = "arm64"

    @classmethod
    def _missing_(cls, value: object) -> Architecture | None:
        aliases = {"amd64": cls.X86_64, "x86": cls.X86_64, "aarch64": cls.ARM64, "arm": cls.ARM64}
        return aliases.get(str(value).lower())


class OnConflict(enum.StrEnum):
    FAIL = "fail"
    WAIT = "wait"
    CANCEL = "cancel"  # stop the run holding the lock, then wait for it to let go (cancel-in-progress)
    QUEUE = "queue"  # wait in line: first come, first served among queued runs


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, frozen=False)


class Resources(_Model):
    cpu: Cpu = Decimal("0.25")
    memory_mib: MemoryMiB = Field(default=512, alias="memory")
    architecture: Architecture = Architecture.X86_64
    spot: bool = False
    storage_gib: int = Field(default=20, ge=1, le=200)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExecutionRequest(_Model):
    """What the user asks for. Exactly one of ``command`` (a shell string) or ``argv``."""

    command: str | None = None
    argv: list[str] | None = None
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list, description="secret names, resolved by the provider")
    resources: Resources = Field(default_factory=Resources)
    region: str | None = None
    timeout: RunTimeout | None = Field(default=None, description="seconds; accepts 90s, 10m, 2h")
    stop_grace: StopGrace = Field(default=10.0, description="seconds between the graceful stop and the kill")
    lock: str | None = None
    on_conflict: OnConflict = OnConflict.FAIL
    lock_timeout: LockTimeout = 600.0
    lock_slots: int = Field(default=1, ge=1, le=100, description="how many runs may hold the lock at once")
    labels: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None

    @model_validator(mode="after")
    def _one_command(self) -> ExecutionRequest:
        if (self.command is None) == (self.argv is None):
            raise ValueError("give exactly one of command (a shell string) or argv (a list of words)")
        if self.command is not None and not self.command.strip():
            raise ValueError("command is empty")
        if self.argv is not None and not self.argv:
            raise ValueError("argv is empty")
        if self.lock_slots > 1 and self.lock is None:
            raise ValueError("lock_slots needs a lock name (--lock NAME --lock-slots N)")
        if self.lock_slots > 1 and self.on_conflict == OnConflict.CANCEL:
            raise ValueError("on_conflict cancel cannot be used with lock_slots: which run would it stop?")
        if self.lock_slots > 1 and self.on_conflict == OnConflict.QUEUE:
            raise ValueError("on_conflict queue cannot be used with lock_slots (yet): use wait")
        return self

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not _ENV_NAME.match(name):
                raise ValueError(f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
            if is_reserved_env_name(name):
                raise ValueError(
                    f"environment variable {name!r}: names starting with RUNVOY_ are set by runvoy itself"
                )
        return env

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.match(r"^[A-Za-z0-9_./:-]+$", name):
                raise ValueError(f"secret name {name!r} may contain only letters, digits and _ . / : -")
            if is_reserved_env_name(name):
                raise ValueError(f"secret {name!r}: names starting with RUNVOY_ are set by runvoy itself")
        return names

    @field_validator("labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(
                    f"label key {key!r} must be lowercase letters, digits and _ . : / - (at most 63 characters)"
                )
            if len(value) > 256:
                raise ValueError(f"label {key!r}: value longer than 256 characters")
        return labels

    @field_validator("lock")
    @classmethod
    def _lock_name(cls, name: str | None) -> str | None:
        if name is not None and not _LOCK_NAME.match(name):
            raise ValueError(
                f"lock name {name!r} must start with a letter or digit and contain only letters, digits, _ . : / -"
            )
        return name

    @model_validator(mode="after")
    def _accepted_forms(self) -> ExecutionRequest:
        """The forms of docs/inputs.md that the field validators above do not already check."""
        checks: list[tuple[str, inputs.Form, object]] = [
            ("command", inputs.COMMAND_WORD, self.command),
            *(("argv", inputs.COMMAND_WORD, word) for word in self.argv or []),
            ("image", inputs.IMAGE, self.image),
            ("region", inputs.REGION, self.region),
            ("workdir", inputs.PATH, self.workdir),
            ("lock", inputs.LOCK_NAME, self.lock),
            *(("env", inputs.ENV_VALUE, value) for value in self.env.values()),
            *(("labels", inputs.LABEL_VALUE, value) for value in self.labels.values()),
            *(("secrets", inputs.SECRET_NAME, name) for name in self.secrets),
        ]
        for field, form, value in checks:
            if value is not None:
                try:
                    form.parse(value)
                except ValueError as exc:
                    raise ValueError(f"{field}: {exc}") from None
        for field, items in (("env", self.env), ("labels", self.labels), ("secrets", self.secrets)):
            if len(items) > inputs.MAX_ITEMS:
                raise ValueError(f"{field}: more than {inputs.MAX_ITEMS} items")
        return self

    def shell_command(self) -> str:
        """The command as one shell string (argv is quoted)."""
        import shlex

        return self.command if self.command is not None else shlex.join(self.argv or [])

    def argv_for_shell(self) -> list[str]:
        """What a container or process runs: ``/bin/sh -c CMD`` or the argv as given."""
        if self.argv is not None:
            return list(self.argv)
        return ["/bin/sh", "-c", self.command or ""]


class CostLine(_Model):
    dimension: str  # vcpu | memory | storage
    quantity: Money  # e.g. vCPU-seconds
    unit: str
    unit_price: Money
    amount: Money


class Cost(_Model):
    """A run's cost. ``total`` is what the provider bills; ``equivalents`` what the same run would cost
    elsewhere (the local provider's total is zero)."""

    provider: str
    region: str | None = None
    currency: str = "USD"
    vcpu: Money = Decimal(0)
    memory: Money = Decimal(0)
    storage: Money = Decimal(0)
    total: Money = Decimal(0)
    billed_seconds: Money = Decimal(0)
    catalog_version: str | None = None
    estimated: bool = False
    lines: list[CostLine] = Field(default_factory=list)
    equivalents: dict[str, Money] = Field(default_factory=dict)
    note: str | None = None


class StopReason(enum.StrEnum):
    """Why runvoy asked a run's task to stop (kept in the record; it decides the final status)."""

    CANCEL = "cancel"  # runvoy kill, Ctrl-C
    KILL = "kill"  # runvoy kill --force, a second Ctrl-C
    TIMEOUT = "timeout"
    LOCK_LOST = "lock_lost"
    START_TIMEOUT = "start_timeout"  # stuck before RUNNING
    SUPERSEDED = "superseded"  # a newer run took its lock with --on-conflict cancel


class Execution(_Model):
    """The stored record of one run."""

    id: str
    provider: str
    region: str | None = None
    request: ExecutionRequest
    status: Status = Status.PENDING
    reason: str | None = None
    exit_code: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    billed_start: datetime | None = None
    billed_stop: datetime | None = None
    task_ref: str | None = None
    request_id: str | None = None
    user: str | None = None
    host: str | None = None
    lock: str | None = None
    fence: int | None = None
    lock_owner: str | None = None
    stop_requested: StopReason | None = None
    stop_detail: str | None = None
    """Why the stop was asked for, in words (e.g. how the lock was lost); part of the final reason."""
    deadline: datetime | None = None
    unknown_since: datetime | None = None
    """When the provider first said it did not know the task (cleared when it knows it again)."""
    cost: Cost | None = None
    error: str | None = None
    version: int = 0

    @property
    def short_id(self) -> str:
        return self.id[:EXECUTION_ID_LENGTH]

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return (end - self.started_at).total_seconds()

    def public_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["duration_seconds"] = self.duration
        return data


class StatusChange(_Model):
    """One entry of an execution's append-only history."""

    at: datetime = Field(default_factory=utcnow)
    status: Status | None = None
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)


class LogEvent(_Model):
    timestamp: datetime
    stream: Literal["stdout", "stderr", "system"] = "stdout"
    message: str


class LogPage(_Model):
    events: list[LogEvent]
    cursor: str | None = None
    """Pass back to continue after the last event; None only when the reader has nothing to resume from."""


class LockState(enum.StrEnum):
    HELD = "held"
    RELEASED = "released"


class LockHolder(_Model):
    execution_id: str | None = None
    provider: str | None = None
    task_ref: str | None = None
    user: str | None = None
    host: str | None = None
    command: str | None = None
    acquired_at: datetime | None = None


class LockRecord(_Model):
    """The value kept in a provider's CAS register for one named lock."""

    name: str
    state: LockState = LockState.HELD
    owner_id: str | None = None
    holder: LockHolder = Field(default_factory=LockHolder)
    fence: int = 0
    lease_ms: int = 30_000
    renewals: int = 0
    audit: list[dict[str, Any]] = Field(default_factory=list)
