"""What the Python API does, as one Protocol: ``Runvoy`` (runvoy_core.api) is a facade whose every public
method delegates to a backend (decision 1501).

- ``LocalBackend`` (runvoy_core.engine) runs runs in this process on a provider plugin: today's behaviour.
- The remote backend (runvoy_core.remote, a plugin found through the ``runvoy_backends`` hook) sends each
  call to a runvoy server over HTTP; the server answers it with a ``TeamBackend`` (runvoy_core.team.guarded):
  the permission checks and the audit log wrapped around a ``LocalBackend``.

So the CLI, Python code and the server's routes all call the same methods, whichever backend is behind them.
Every method takes and returns JSON-friendly values (records, lists, dicts of text and numbers), so the
remote backend can carry them over HTTP unchanged.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from runvoy_core.config import Settings
    from runvoy_core.models import (
        Execution,
        ExecutionRequest,
        LockRecord,
        LogEvent,
        LogPage,
        Status,
        StatusChange,
    )
    from runvoy_core.runner import LogSink, Messages, RunHandle
    from runvoy_core.team.admin import TeamAdmin


@runtime_checkable
class Backend(Protocol):
    """The operations of the Python API. Extended only together with both backends and the server's routes."""

    provider_name: str

    # -- running
    def run(
        self,
        command: str | list[str] | ExecutionRequest,
        *,
        log_sink: LogSink | None = None,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        on_start: Callable[[RunHandle], None] | None = None,
        image_check: bool = True,
        **options: Any,
    ) -> Execution: ...

    def submit(
        self,
        command: str | list[str] | ExecutionRequest,
        *,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        image_check: bool = True,
        **options: Any,
    ) -> Execution: ...

    # -- reading
    def resolve_id(self, id_or_prefix: str) -> str: ...
    def get(self, execution_id: str) -> Execution: ...
    def status(self, execution_id: str) -> Execution: ...
    def events(self, execution_id: str) -> builtins.list[StatusChange]: ...
    def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.2,
        poll_max: float | None = None,
    ) -> Execution: ...
    def logs(
        self, execution_id: str, *, follow: bool = False, tail: int | None = None, pattern: str | None = None
    ) -> Iterator[LogEvent]: ...
    def log_page(self, execution_id: str, *, cursor: str | None = None, limit: int = 1000) -> LogPage:
        """One page of an execution's stored logs from ``cursor`` (None: the start); the page's cursor
        continues it (None when the run has ended and nothing is left)."""
        ...

    def copy_logs(self, execution_id: str, sink: LogSink, *, follow: bool = False) -> None: ...
    def list(
        self,
        *,
        statuses: set[Status] | None = None,
        limit: int = 50,
        since: datetime | None = None,
        labels: dict[str, str] | None = None,
        refresh: bool = True,
    ) -> builtins.list[Execution]: ...

    # -- acting
    def kill(self, execution_id: str, *, force: bool = False, wait: float | None = None) -> Execution: ...
    def reconcile(self, *, dry_run: bool = False) -> builtins.list[dict[str, Any]]: ...

    # -- playbooks (decision 1512): the YAML text travels, so whoever runs it sees the playbook's name
    def run_playbook(
        self,
        text: str,
        *,
        name: str | None = None,
        source: str | None = None,
        log_sink: LogSink | None = None,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        on_start: Callable[[RunHandle], None] | None = None,
        **options: Any,
    ) -> Execution:
        """Run a playbook given as its YAML text (docs/playbooks.md) and wait, as ``run`` does.

        ``name`` names a playbook whose text has none (the CLI passes the file's stem); ``source`` is how
        errors name the text (the CLI passes the file's path; default ``<playbook>``). ``options`` are ``run``'s
        keyword options (``image``, ``cpu``, ``lock``, ``labels``, ``image_check``...), which win over the
        playbook's (``env``, ``labels`` and ``secrets`` merge). The run carries the label ``playbook=<name>``;
        ``runvoy_core.playbook.parse_playbook(text, default_name=name).name`` tells the name before. Raises UsageError/ValidationFailed for a bad playbook, before anything runs."""
        ...

    def submit_playbook(
        self,
        text: str,
        *,
        name: str | None = None,
        source: str | None = None,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        **options: Any,
    ) -> Execution:
        """``run_playbook`` detached: start and return at once, as ``submit`` does."""
        ...

    # -- locks (decision 1512)
    def list_locks(self) -> builtins.list[dict[str, Any]]:
        """Every lock of this backend's lock register, by name. Each is the ``LockRecord`` as JSON (``name``,
        ``state`` "held"|"released", ``holder`` {``execution_id``, ``provider``, ``task_ref``, ``user``, ``host``,
        ``command``, ``acquired_at``...}, ``fence``, ``lease_ms``, ``renewals``, ``audit``: a list of dicts) plus
        ``version`` (the register's compare-and-swap version, text), ``age_seconds`` (since the holder took it,
        a number or None) and ``lease_seconds`` (a number). A lock with slots lists each slot, ``NAME#N``."""
        ...

    def lock_status(self, name: str) -> dict[str, Any]:
        """One lock (a name or a slot ``NAME#N``) as ``list_locks`` gives it, plus ``holder_status`` (what the
        provider says of the holder's run: a Status, ``-`` when the lock is not held or the provider cannot
        tell, ``unknown`` when asking failed) and ``queue``: the runs waiting for it, first first, each
        ``{"ticket": int, "execution_id": str|None, "user": str|None, "host": str|None}``.
        Raises NotFound when no such lock exists (its hint names the lock's slots, if it has some)."""
        ...

    def release_lock(self, name: str, *, force: bool = False, version: str | None = None) -> dict[str, Any]:
        """Release a lock. Without ``force`` only when its holder execution is known to have ended (else
        LockHeld, whose hint says how to stop the holder). With ``force`` whoever holds it (the holder loses
        it; its fenced writes are refused), as a compare-and-swap on ``version`` when given — the version that
        whoever decided was shown (``lock_status``): VersionConflict when the lock changed since, and nothing
        is released. The audit entry names who released it (the caller, ``current_caller``, else this
        machine's user). Returns ``{"name": str, "released": bool, "fence": int, "message": str}``; a lock
        that is not held is not an error (``released`` false). Raises NotFound for an unknown lock."""
        ...

    # -- cost (decision 1512)
    def estimate_cost(
        self,
        *,
        cpu: str = "1",
        memory: str = "2GiB",
        duration: str = "10m",
        provider: str = "all",
        region: str | None = None,
        arch: str = "x86_64",
        spot: bool = False,
        storage_gib: int = 20,
        runs: int = 1,
    ) -> dict[str, Any]:
        """What ``runs`` runs of this size would cost, on one provider that declares prices (or ``local``),
        or on each of them (``all``), cheapest first. Values in their documented forms (runvoy_core.inputs:
        CPU, MEMORY, ESTIMATE_DURATION, REGION; ``arch`` x86_64|amd64|x86|arm64|aarch64|arm; storage 1-200 GiB;
        runs 1-3,660,000,000). Returns ``{"request": {...}, "catalog": {"version", "origin", "retrieved_date",
        "age_days"}, "estimates": [{"provider", "region", "size", "cpu", "memory_mib", "architecture",
        "capacity", "billed_seconds", "vcpu", "memory", "storage", "per_run", "runs", "total", "currency",
        "notes": [str]} or {"provider", "region", "error": str}], "warnings": [str]}``; amounts are decimal
        text. ``warnings`` are about the price catalog (stale, damaged), for the person to see.
        Raises UsageError for a provider that declares no prices, ValidationFailed for a size it cannot run
        (when only one provider is priced)."""
        ...

    def cost_report(
        self, *, since: float = 7 * 86400, by: str = "provider", provider: str | None = None
    ) -> dict[str, Any]:
        """What stored executions created in the last ``since`` seconds (1 to 3650 days) cost, grouped
        ``by`` provider|user|label|lock|day, optionally only ``provider``'s runs. Reads the local records and,
        when this backend's provider is not ``local``, that provider's store too. Returns ``CostReport.as_dict``
        (``since``, ``since_requested``, ``since_rounded_to_hour``, ``by``, ``runs``, ``total``, ``rows``: each
        ``{"key", "runs", "billed_seconds", "total", "currency", "equivalents": {provider: amount}}``; amounts
        decimal text) plus ``warnings`` ([str]: a store that could not be read is left out and named)."""
        ...

    # -- budgets (decision 1512): each is ``BudgetStatus.as_dict``: the Budget as JSON (``name``, ``amount``
    #    decimal text, ``currency``, ``period`` day|week|month, ``alert_at`` [int], ``enforce``, ``created_at``)
    #    with ``scope`` described in words, ``period_start``, ``period_end``, ``spent`` and ``percent`` (text)
    def list_budgets(self) -> builtins.list[dict[str, Any]]:
        """Every budget with what was spent in its current period, by name."""
        ...

    def show_budget(self, name: str) -> dict[str, Any]:
        """One budget as ``list_budgets`` gives it plus ``alerted``: the thresholds (percent) already alerted
        this period, and -1 when it refused a run. Raises NotFound."""
        ...

    def set_budget(
        self,
        name: str,
        *,
        amount: str,
        period: str = "month",
        scopes: builtins.list[str] | None = None,
        alert_at: str = "50,80,100",
        enforce: bool = False,
        currency: str = "USD",
    ) -> dict[str, Any]:
        """Create or replace the budget ``name`` (inputs.BUDGET_NAME). ``amount`` inputs.AMOUNT, ``scopes``
        each inputs.SCOPE (provider=NAME, user=NAME, label=KEY:VALUE; all must match), ``alert_at``
        inputs.ALERT_AT, ``currency`` inputs.CURRENCY. A replaced budget keeps its ``created_at``.
        Returns ``{"budget": <the Budget as JSON, scope as a dict>, "created": bool}``. Raises ValidationFailed."""
        ...

    def remove_budget(self, name: str) -> None:
        """Delete the budget ``name``. Raises NotFound."""
        ...

    # -- providers (decision 1512)
    def list_providers(self) -> dict[str, Any]:
        """The providers installed where this backend runs: ``{"providers": [{"name", "default": bool,
        "distribution", "version", "plugin", "capabilities": [str], "description", "install_extra"}],
        "failures": [{"plugin", "distribution", "error"}], "skipped": [str], "notices": [str],
        "prices": <the price catalog's info, or None>, "warnings": [str]}``."""
        ...

    # -- the team (decision 1519)
    def team(self) -> TeamAdmin:
        """The admin surface of users, keys, policies and the audit log where this backend keeps them: the
        provider's document store for a LocalBackend (whoever holds its credentials), the server's admin
        routes for a server's client, the caller's checked view on a server. Raises CapabilityMissing for a
        provider without a document store."""
        ...

    def close(self) -> None: ...


class BackendFactory(Protocol):
    """What a plugin's ``runvoy_backends`` hook returns per URL scheme: builds the backend for a server URL
    (``Runvoy(server=...)``, config key ``server``, RUNVOY_SERVER). ``token`` is the one given to ``Runvoy``
    (None: the factory finds one itself, e.g. RUNVOY_TOKEN or ``runvoy login``'s file); ``provider`` and
    ``config`` are ``Runvoy``'s own arguments (None and {} unless given). Raise ConfigError for a URL or
    token it cannot use."""

    def __call__(
        self,
        url: str,
        *,
        token: str | None,
        settings: Settings,
        provider: str | None,
        config: dict[str, Any],
    ) -> Backend: ...
