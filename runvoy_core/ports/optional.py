"""Optional features of a provider's ports, each a small Protocol that the core checks with ``isinstance``.

A provider offers one by implementing its methods; the core never probes for attributes by name. Each is
also declared in the provider's ``ProviderSpec.capabilities`` (see ``OPTIONAL_FEATURES``), and the
conformance kit checks that what is declared is what is implemented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from runvoy_core.ports.capabilities import Capability
from runvoy_core.ports.compute import LeftoverSweeping, StoreScoped, TaskState
from runvoy_core.ports.logs import FileRange

if TYPE_CHECKING:
    from datetime import datetime

    from runvoy_core.cost.rollups import RollupRow
    from runvoy_core.models import Execution
    from runvoy_core.ports.locks import Versioned


@runtime_checkable
class WaitingCompute(Protocol):
    """A compute that can block until a task ends (the local provider waits on the supervisor's pidfd)."""

    def wait(self, ref: str, timeout: float) -> TaskState:
        """Return the task's state once it ended, or after ``timeout`` seconds, whichever comes first."""
        ...


@runtime_checkable
class RawChunkLogs(Protocol):
    """Logs that can hand over whole chunks of complete lines, with no per-line work."""

    def read_raw_chunks(
        self, ref: str, cursor: str | None = None
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        """``([(stream, bytes)], cursor)`` after ``cursor``; the cursor is the one ``read`` uses."""
        ...


@runtime_checkable
class FileRangeLogs(Protocol):
    """Logs kept in files on this machine, handed over as file ranges (copied with ``sendfile``)."""

    def read_raw_ranges(self, ref: str, cursor: str | None = None) -> tuple[list[FileRange], str | None]:
        """The chunks of ``read_raw_chunks`` as ranges of files; the cursor is the one ``read`` uses."""
        ...


@runtime_checkable
class ArchivingLogs(Protocol):
    """Logs that are copied to durable storage when a run ends (the cloud's log service may expire them)."""

    def archive(self, ref: str, execution_id: str) -> Any:
        """Copy the whole log of the task; best effort (the runner logs a failure and goes on). For a run
        with secrets the runner passes ``mask=`` (a ``str -> str`` for each line): what is archived is the
        masked text (decision 1901)."""
        ...


@runtime_checkable
class SecretValues(Protocol):
    """A provider whose secrets reach the task without passing through runvoy (a cloud injects them): the
    values of a run's ``--secret`` names, read again so that runvoy masks them in the output it shows and
    archives (decision 1901). Part of ``Capability.SECRETS``, not a capability of its own: a provider that
    captures the output itself (the local one) masks it there and does not implement this."""

    def secret_values(self, names: Sequence[str]) -> list[str]:
        """The current values of the named secrets, as the task sees them; raises when one cannot be read."""
        ...


@runtime_checkable
class SettingUpProvider(Protocol):
    """A provider that can create (or, with ``dry_run``, only check) what it needs in its account."""

    def setup(self, dry_run: bool = False) -> list[dict[str, Any]]:
        """One entry per resource: ``{"resource", "action", "detail"}``. ``dry_run`` changes nothing."""
        ...


@runtime_checkable
class PollHints(Protocol):
    """How often the runner may ask a provider about a task (seconds). ``poll_interval_max`` None: the
    user's setting ``poll_interval_max``."""

    poll_interval_min: float
    poll_interval_max: float | None


@runtime_checkable
class BatchStatus(Protocol):
    """A compute that reads the states of many tasks in a few calls (ECS DescribeTasks takes 100 ARNs): the
    shared poller (``runvoy_core.polling``) asks it once per round for every run this process follows."""

    def status_many(self, refs: Sequence[str]) -> dict[str, TaskState]:
        """The state of each ref, as ``describe`` would give it (UNKNOWN for a task the provider no longer
        knows); a transient failure raises ``TransientProviderError`` for the whole batch."""
        ...


@runtime_checkable
class MissingCostCount(Protocol):
    """A store that finds for itself the ended runs missing from its cost rollups and counts them, without
    reading every record of the recount window (``runvoy reconcile``; the local store, from one query)."""

    def count_missing_costs(self) -> list[str]:
        """Count the ended runs missing from the rollups; their ids."""
        ...


@runtime_checkable
class CostRollups(Protocol):
    """A store that keeps hour buckets of ended runs' costs (``runvoy_core.cost.rollups``), so ``cost
    report`` and budget checks read a few buckets instead of every run of a period. The core's local store
    (``LocalStore``) does; a provider whose store does declares ``cost_rollups``. A store may return whole
    days of the range as one row per day (dated 00:00): readers sum rows and look only at their day."""

    def add_to_rollups(self, execution: Execution) -> bool:
        """Count an ended execution into its hour bucket; False when this id was already counted."""
        ...

    def rollups(self, since: datetime, until: datetime | None = None) -> list[RollupRow]:
        """Every bucket whose hour is >= the hour of `since` (and < `until`), any order."""
        ...


@runtime_checkable
class CostTotals(Protocol):
    """A ``CostRollups`` store that also keeps running totals per bucket identity, so the costs since an hour
    come as one row per identity however long the period (the core's local store; not a provider
    capability: ``cost report`` and budget checks use it when it is there, ``rollups`` otherwise)."""

    def cost_totals(self, since: datetime) -> list[RollupRow]:
        """One row per bucket identity (``hour`` = the hour of ``since``): its runs that ended since then."""
        ...

    def day_totals(self, since: datetime) -> list[RollupRow]:
        """One row per day and provider (user, lock and labels left out; the first day dated the hour of
        ``since``): the runs that ended since then, for the report by day."""
        ...


@runtime_checkable
class LockListing(Protocol):
    """A lock register that lists the locks and their slots without the lock queues' tickets: a register's
    ``list`` returns every entry, and a cloud register keeps a ticket per run that ever queued, so
    ``runvoy locks list`` would grow with the number of runs (issue 14)."""

    def list_locks(self) -> list[tuple[str, Versioned]]: ...


class Document:
    """One stored document: its key, its JSON object value and an opaque version token (what a later
    ``put_document`` passes to replace exactly this version)."""

    __slots__ = ("key", "value", "version")

    def __init__(self, key: str, value: dict[str, Any], version: str) -> None:
        self.key = key
        self.value = value
        self.version = version

    def __repr__(self) -> str:
        return f"Document({self.key!r}, version={self.version!r})"


@runtime_checkable
class DocumentStore(Protocol):
    """Namespaced JSON documents with compare-and-swap, in the provider's own store: what the team service
    keeps (users, key hashes, policies, the audit chain, schedules...) so that every server replica and every
    provider behave the same (decision 1501). Bounds, checked by every implementation through
    ``runvoy_core.documents.check_*`` before any call: namespace ``[a-z][a-z0-9-]{0,31}``; key 1-256 printable
    ASCII characters (0x21-0x7e); value a JSON object (string keys, nested at most 32 deep) of at most 32 KiB
    encoded (``ValidationFailed`` otherwise). Keys list in ascending byte order."""

    def get_document(self, namespace: str, key: str) -> Document | None: ...

    def put_document(
        self, namespace: str, key: str, value: dict[str, Any], *, version: str | None = None
    ) -> Document:
        """``version=None``: create if absent, else raise ``AlreadyExists``. Otherwise replace if the stored
        version is ``version``, else raise ``VersionConflict`` (also when the document is gone). Returns the
        document as stored, with its new version."""

    def delete_document(self, namespace: str, key: str, *, version: str) -> None:
        """Delete if the stored version is ``version``; ``VersionConflict`` otherwise (also when absent)."""

    def list_documents(
        self, namespace: str, *, prefix: str = "", after: str | None = None, limit: int = 100
    ) -> list[Document]:
        """Up to ``limit`` (1-1000) documents whose key starts with ``prefix`` and sorts after ``after``,
        in ascending key order: pass the last key of a page as ``after`` to read the next one. A page is
        full whenever that many documents follow, so a shorter page is the last one."""


@runtime_checkable
class RangeSink(Protocol):
    """A log sink that can copy a file range itself (the CLI's terminal writer, with ``sendfile``)."""

    def write_range(self, chunk: FileRange) -> None: ...


@runtime_checkable
class RawSink(Protocol):
    """A log sink that takes raw bytes of one stream."""

    def write_raw(self, stream: str, data: bytes) -> None: ...


@runtime_checkable
class DefaultImage(Protocol):
    """A provider whose every run runs an image: the one its config names, when a run names none. The
    core's image check (issue 20) checks and pins that one too, so a record always says which image ran.
    Implemented on the provider object itself, tested with ``isinstance`` only."""

    def default_image(self) -> str:
        """The image reference a run without ``--image`` runs."""
        ...


@runtime_checkable
class RegistryLogin(Protocol):
    """A provider that can log in to image registries of its own cloud (ECR, Artifact Registry, ACR).

    Implemented on the provider object itself (not a port): the core's image check (issue 20) asks it for
    credentials before it falls back to the ``[images.registries."HOST"]`` config. Not a declared capability:
    the core tests it with ``isinstance`` only."""

    def registry_login(self, registry: str) -> tuple[str, str] | None:
        """(username, password or token) for ``registry`` (host[:port]) from this cloud's own credentials,
        or None when this provider has none for it."""
        ...


@dataclass(frozen=True)
class CredentialReport:
    """What a provider's credential check found in its cloud's usual credential chain (``runvoy init``)."""

    found: tuple[str, ...] = ()
    """Where credentials were found, one line each ("environment variables AWS_ACCESS_KEY_ID, ...")."""
    missing: tuple[str, ...] = ()
    """What is missing, one line each, saying how to provide it (a command to run, a variable to set)."""
    region: str | None = None
    """The region the cloud's own configuration names (AWS_REGION, gcloud's run/region), if any."""
    settings: dict[str, str] = field(default_factory=dict)
    """Provider settings the chain names (the GCP project, the Azure subscription): offered as defaults."""

    @property
    def ok(self) -> bool:
        return bool(self.found) and not self.missing


@runtime_checkable
class CredentialCheck(Protocol):
    """How ``runvoy init`` looks for a cloud's credentials before anything is created. Declared by import
    string in ``ProviderSpec.credentials`` (not a port of the provider object: it runs before there is a
    config to build one with). Reads the chain's files and variables; makes no network call it can avoid."""

    region_setting: str
    """The key of the provider's config section that holds its region ("region", "location")."""

    def check(self, section: dict[str, Any]) -> CredentialReport:
        """Look for credentials as the provider would with this ``[providers.NAME]`` section."""
        ...


OPTIONAL_FEATURES: dict[Capability, tuple[str, type]] = {
    Capability.NATIVE_WAIT: ("compute", WaitingCompute),
    Capability.RAW_LOGS: ("logs", RawChunkLogs),
    Capability.FILE_LOGS: ("logs", FileRangeLogs),
    Capability.LOG_ARCHIVE: ("logs", ArchivingLogs),
    Capability.SETUP: ("provider", SettingUpProvider),
    Capability.STORE_SCOPED: ("compute", StoreScoped),
    Capability.LEFTOVER_SWEEP: ("compute", LeftoverSweeping),
    Capability.COST_ROLLUPS: ("store", CostRollups),
    Capability.BATCH_STATUS: ("compute", BatchStatus),
    Capability.DOCUMENTS: ("store", DocumentStore),
}
"""Each optional feature: the part of the provider that implements it, and its Protocol."""


def implemented_features(provider: Any) -> frozenset[Capability]:
    """The optional features a provider object implements (what its spec must declare, no more, no less)."""
    found = set()
    for capability, (part, protocol) in OPTIONAL_FEATURES.items():
        target = {
            "provider": provider,
            "compute": provider.compute,
            "logs": provider.logs,
            # None: the core keeps the records in its local store, which is no part of the provider
            "store": provider.store,
        }[part]
        if isinstance(target, protocol):
            found.add(capability)
    return frozenset(found)
