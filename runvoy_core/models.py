"""The data runvoy passes around and stores: msgspec Structs on ``runvoy_core.records.Record`` (decision 1410).

Secrets appear only by *name* in a request; their values never enter a model that is stored or printed.
"""

from __future__ import annotations

import enum
import os
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from runvoy_core import inputs
from runvoy_core.records import Record, RecordError, parsed_type
from runvoy_core.units import parse_cpu, parse_duration, parse_memory_mib

EXECUTION_ID_LENGTH = 12
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9_.:/-]{0,62})$")
_LOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9_./:-]+$")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
RESERVED_ENV_PREFIX = "RUNVOY_"


def is_reserved_env_name(name: str) -> bool:
    """RUNVOY_* (any case) is what runvoy gives the task: no user value may take such a name (decision 0208)."""
    return name.upper().startswith(RESERVED_ENV_PREFIX)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_execution_id() -> str:
    """12 lowercase hex characters (48 random bits): short enough to type, valid in every cloud's resource
    names, and abbreviable to any unique prefix."""
    return os.urandom(EXECUTION_ID_LENGTH // 2).hex()


Money = Decimal
"""An amount; stored and printed as a decimal string."""
if TYPE_CHECKING:
    from typing import TypeAlias

    Cpu: TypeAlias = Decimal
    MemoryMiB: TypeAlias = int
    Seconds: TypeAlias = float
    RunTimeout: TypeAlias = float
    StopGrace: TypeAlias = float
    LockTimeout: TypeAlias = float
    LockLease: TypeAlias = float
    PollIntervalMax: TypeAlias = float
    StartTimeout: TypeAlias = float
    WebhookTimeout: TypeAlias = float
else:
    # parsed on input ("0.5", "256m"; "2GiB"; "10m"): the bounded forms of docs/inputs.md (runvoy_core/inputs.py),
    # shared by the API, the CLI and playbooks
    Cpu = parsed_type(Decimal, parse_cpu, "Cpu")
    MemoryMiB = parsed_type(int, parse_memory_mib, "MemoryMiB")
    Seconds = parsed_type(float, parse_duration, "Seconds")
    RunTimeout = parsed_type(float, inputs.RUN_TIMEOUT.parse, "RunTimeout")
    StopGrace = parsed_type(float, inputs.STOP_GRACE.parse, "StopGrace")
    LockTimeout = parsed_type(float, inputs.LOCK_TIMEOUT.parse, "LockTimeout")
    LockLease = parsed_type(float, inputs.LOCK_LEASE.parse, "LockLease")
    PollIntervalMax = parsed_type(float, inputs.POLL_INTERVAL_MAX.parse, "PollIntervalMax")
    StartTimeout = parsed_type(float, inputs.START_TIMEOUT.parse, "StartTimeout")
    WebhookTimeout = parsed_type(float, inputs.WEBHOOK_TIMEOUT.parse, "WebhookTimeout")


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


class Resources(Record, kw_only=True):
    cpu: Cpu = Decimal("0.25")
    memory_mib: MemoryMiB = 512
    """Given as ``memory`` ("2GiB", "512MiB") in requests, config and playbooks."""
    architecture: Architecture = Architecture.X86_64
    spot: bool = False
    storage_gib: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20
    explicit: frozenset[str] = frozenset()
    """The fields the request named (a provider may round only what the user did not choose)."""

    @classmethod
    def model_validate(cls, data: Any) -> Resources:
        return super().model_validate(_resources_input(data))


def _resources_input(data: Any) -> Any:
    """``memory`` is the accepted spelling of ``memory_mib``; ``explicit`` records what the input named."""
    if not isinstance(data, dict) or "explicit" in data:
        return data
    data = dict(data)
    if "memory" in data:
        if "memory_mib" in data:
            raise RecordError("give memory or memory_mib, not both", "memory")
        data["memory_mib"] = data.pop("memory")
    data["explicit"] = sorted(k for k in data if k in _RESOURCE_FIELDS)
    return data


_RESOURCE_FIELDS = frozenset({"cpu", "memory_mib", "architecture", "spot", "storage_gib"})


def _check_env_names(env: dict[str, str]) -> None:
    for name in env:
        if not _ENV_NAME.match(name):
            raise RecordError(f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*", "env")
        if is_reserved_env_name(name):
            raise RecordError(
                f"environment variable {name!r}: names starting with RUNVOY_ are set by runvoy itself", "env"
            )


def _check_secret_names(names: list[str]) -> None:
    for name in names:
        if not _SECRET_NAME.match(name):
            raise RecordError(
                f"secret name {name!r} may contain only letters, digits and _ . / : -", "secrets"
            )
        if is_reserved_env_name(name):
            raise RecordError(
                f"secret {name!r}: names starting with RUNVOY_ are set by runvoy itself", "secrets"
            )


def _check_labels(labels: dict[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise RecordError(
                f"label key {key!r} must be lowercase letters, digits and _ . : / - (at most 63 characters)",
                "labels",
            )
        if len(value) > 256:
            raise RecordError(f"label {key!r}: value longer than 256 characters", "labels")


def _check_lock_name(name: str | None) -> None:
    if name is not None and not _LOCK_NAME.match(name):
        raise RecordError(
            f"lock name {name!r} must start with a letter or digit and contain only letters, digits, _ . : / -",
            "lock",
        )


class ExecutionRequest(Record, kw_only=True):
    """What the user asks for. Exactly one of ``command`` (a shell string) or ``argv``."""

    command: str | None = None
    argv: list[str] | None = None
    image: str | None = None
    env: dict[str, str] = {}
    secrets: list[str] = []
    """Secret names, resolved by the provider."""
    resources: Resources = msgspec.field(default_factory=Resources)
    region: str | None = None
    timeout: RunTimeout | None = None
    """Seconds; accepts 90s, 10m, 2h."""
    stop_grace: StopGrace = 10.0
    """Seconds between the graceful stop and the kill."""
    lock: str | None = None
    on_conflict: OnConflict = OnConflict.FAIL
    lock_timeout: LockTimeout = 600.0
    lock_slots: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    """How many runs may hold the lock at once."""
    labels: dict[str, str] = {}
    workdir: str | None = None
    image_digest: str | None = None
    """What the image check resolved ``image`` to (``sha256:...``; an index's digest for a multi-platform
    image): the task runs ``<repository>@<image_digest>`` (``pinned_image``). Set by runvoy, not an input;
    None without ``image``, or when the check was skipped and the reference names no digest (decision 0804)."""
    image_platform_digest: str | None = None
    """The manifest the run's platform gets from ``image_digest`` (equal to it for a single-platform image)."""

    @classmethod
    def model_validate(cls, data: Any) -> ExecutionRequest:
        if isinstance(data, dict) and isinstance(data.get("resources"), dict):
            data = {**data, "resources": _resources_input(data["resources"])}
        return super().model_validate(data)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._one_command()
        _check_env_names(self.env)
        _check_secret_names(self.secrets)
        _check_labels(self.labels)
        _check_lock_name(self.lock)
        self._accepted_forms()
        if not 1 <= self.lock_slots <= 100:
            raise RecordError("must be from 1 to 100", "lock_slots")

    def _one_command(self) -> None:
        if (self.command is None) == (self.argv is None):
            raise RecordError("give exactly one of command (a shell string) or argv (a list of words)")
        if self.command is not None and not self.command.strip():
            raise RecordError("command is empty")
        if self.argv is not None and not self.argv:
            raise RecordError("argv is empty")
        if self.lock_slots > 1 and self.lock is None:
            raise RecordError("lock_slots needs a lock name (--lock NAME --lock-slots N)")
        if self.lock_slots > 1 and self.on_conflict == OnConflict.CANCEL:
            raise RecordError("on_conflict cancel cannot be used with lock_slots: which run would it stop?")
        if self.lock_slots > 1 and self.on_conflict == OnConflict.QUEUE:
            raise RecordError("on_conflict queue cannot be used with lock_slots (yet): use wait")

    def _accepted_forms(self) -> None:
        """The forms of docs/inputs.md that the name checks above do not already cover."""
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
                    raise RecordError(str(exc), field) from None
        for field, items in (("env", self.env), ("labels", self.labels), ("secrets", self.secrets)):
            if len(items) > inputs.MAX_ITEMS:
                raise RecordError(f"more than {inputs.MAX_ITEMS} items", field)
        for field, digest in (
            ("image_digest", self.image_digest),
            ("image_platform_digest", self.image_platform_digest),
        ):
            if digest is not None:
                if self.image is None:
                    raise RecordError("a digest needs an image", field)
                if not _DIGEST.fullmatch(digest):
                    raise RecordError("must be sha256: and 64 hex digits (or sha512: and 128)", field)

    def pinned_image(self) -> str | None:
        """What the task runs: ``image`` pinned to ``image_digest`` (``domain/repository@digest``, so a tag
        moved meanwhile does not change what runs), else ``image`` as given."""
        if self.image is None or self.image_digest is None:
            return self.image
        from runvoy_core.images.reference import parse_reference

        return parse_reference(self.image).pinned(self.image_digest)

    def shell_command(self) -> str:
        """The command as one shell string (argv is quoted)."""
        import shlex

        return self.command if self.command is not None else shlex.join(self.argv or [])

    def argv_for_shell(self) -> list[str]:
        """What a container or process runs: ``/bin/sh -c CMD`` or the argv as given."""
        if self.argv is not None:
            return list(self.argv)
        return ["/bin/sh", "-c", self.command or ""]


class CostLine(Record, kw_only=True):
    dimension: str  # vcpu | memory | storage
    quantity: Money  # e.g. vCPU-seconds
    unit: str
    unit_price: Money
    amount: Money


class Cost(Record, kw_only=True):
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
    lines: list[CostLine] = []
    equivalents: dict[str, Money] = {}
    note: str | None = None


class StopReason(enum.StrEnum):
    """Why runvoy asked a run's task to stop (kept in the record; it decides the final status)."""

    CANCEL = "cancel"  # runvoy kill, Ctrl-C
    KILL = "kill"  # runvoy kill --force, a second Ctrl-C
    TIMEOUT = "timeout"
    LOCK_LOST = "lock_lost"
    START_TIMEOUT = "start_timeout"  # stuck before RUNNING
    SUPERSEDED = "superseded"  # a newer run took its lock with --on-conflict cancel


class Execution(Record, kw_only=True):
    """The stored record of one run."""

    id: str
    provider: str
    region: str | None = None
    request: ExecutionRequest
    status: Status = Status.PENDING
    reason: str | None = None
    exit_code: int | None = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
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


class StatusChange(Record, kw_only=True):
    """One entry of an execution's append-only history."""

    at: datetime = msgspec.field(default_factory=utcnow)
    status: Status | None = None
    event: str
    detail: dict[str, Any] = {}


class LogEvent(Record, kw_only=True):
    timestamp: datetime
    stream: str = "stdout"
    """stdout, stderr or system (runvoy's own lines)."""
    message: str


class LogPage(Record, kw_only=True):
    events: list[LogEvent]
    cursor: str | None = None
    """Pass back to continue after the last event; None only when the reader has nothing to resume from."""


class LockState(enum.StrEnum):
    HELD = "held"
    RELEASED = "released"


class LockHolder(Record, kw_only=True):
    execution_id: str | None = None
    provider: str | None = None
    task_ref: str | None = None
    user: str | None = None
    host: str | None = None
    command: str | None = None
    acquired_at: datetime | None = None


class LockRecord(Record, kw_only=True):
    """The value kept in a provider's CAS register for one named lock."""

    name: str
    state: LockState = LockState.HELD
    owner_id: str | None = None
    holder: LockHolder = msgspec.field(default_factory=LockHolder)
    fence: int = 0
    lease_ms: int = 30_000
    renewals: int = 0
    audit: list[dict[str, Any]] = []
