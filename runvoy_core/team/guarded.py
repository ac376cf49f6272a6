"""``TeamBackend``: the Python API for one caller, with the permission checks and the audit entries (decision
1508). The server builds one per request around its shared ``LocalBackend``; permissions are checked here and
nowhere else.

Every public method starts with ``self._allow(method, ...)``, which looks the method up in ``ACTIONS`` (so a
method missing from the table is refused, never let through) and asks ``policy.decide``. Runs belong to the
team in their ``runvoy.team`` label: another team's run is "not found" for a non-admin (the same error an
unknown id gives), so ids cannot be probed. Each mutating call and each refusal appends an audit entry.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from runvoy_core.errors import AccessDenied, NotFound, RunvoyError, ValidationFailed
from runvoy_core.logging import get_logger
from runvoy_core.ports.optional import DocumentStore
from runvoy_core.team import roles
from runvoy_core.team.admin import Identity, LocalTeamAdmin, TeamAdmin
from runvoy_core.team.context import Caller, calling_as
from runvoy_core.team.keys import KeyInfo, NewKey
from runvoy_core.team.policy import Decision, Policy, Target, decide
from runvoy_core.team.users import User

if TYPE_CHECKING:
    from runvoy_core.backend import Backend
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
    from runvoy_core.team.audit import AuditEntry, AuditReport

log = get_logger("runvoy.team")
T = TypeVar("T")

TEAM_LABEL = "runvoy.team"
"""The reserved label naming a run's team; set by TeamBackend on every run it starts, never by a caller."""

ACTIONS: dict[str, str] = {
    # Backend: running
    "run": roles.RUNS_START,
    "submit": roles.RUNS_START,
    "run_playbook": roles.PLAYBOOKS_RUN,
    "submit_playbook": roles.PLAYBOOKS_RUN,
    # Backend: reading runs
    "resolve_id": roles.RUNS_READ,
    "get": roles.RUNS_READ,
    "status": roles.RUNS_READ,
    "events": roles.RUNS_READ,
    "wait": roles.RUNS_READ,
    "logs": roles.RUNS_READ,
    "log_page": roles.RUNS_READ,
    "copy_logs": roles.RUNS_READ,
    "list": roles.RUNS_READ,
    # Backend: acting
    "kill": roles.RUNS_KILL,
    "reconcile": roles.RUNS_RECONCILE,
    "list_locks": roles.LOCKS_READ,
    "lock_status": roles.LOCKS_READ,
    "release_lock": roles.LOCKS_RELEASE,
    "estimate_cost": roles.COST_READ,
    "cost_report": roles.COST_READ,
    "list_budgets": roles.BUDGETS_READ,
    "show_budget": roles.BUDGETS_READ,
    "set_budget": roles.BUDGETS_WRITE,
    "remove_budget": roles.BUDGETS_WRITE,
    "list_providers": roles.PROVIDERS_READ,
    # TeamAdmin
    "whoami": roles.WHOAMI,
    "create_user": roles.USERS_WRITE,
    "list_users": roles.USERS_READ,
    "show_user": roles.USERS_READ,
    "disable_user": roles.USERS_WRITE,
    "enable_user": roles.USERS_WRITE,
    "create_key": roles.KEYS_WRITE,
    "list_keys": roles.KEYS_SELF,
    "revoke_key": roles.KEYS_SELF,
    "rotate_key": roles.KEYS_SELF,
    "set_policy": roles.POLICIES_WRITE,
    "list_policies": roles.POLICIES_READ,
    "show_policy": roles.POLICIES_READ,
    "remove_policy": roles.POLICIES_WRITE,
    "audit_verify": roles.AUDIT_READ,
    "audit_entries": roles.AUDIT_READ,
}
"""Which action each public method needs. ``close`` needs none: it does not close the shared backend."""

MUTATING = frozenset(
    {
        "run",
        "submit",
        "run_playbook",
        "submit_playbook",
        "kill",
        "reconcile",
        "release_lock",
        "set_budget",
        "remove_budget",
        "create_user",
        "disable_user",
        "enable_user",
        "create_key",
        "revoke_key",
        "rotate_key",
        "set_policy",
        "remove_policy",
    }
)
"""The methods whose every call is audited (reads are audited only when refused)."""

_ANY_TEAM = object()


class AuditSink(Protocol):
    """Where entries go: ``runvoy_core.team.audit.AuditLog`` (decision 1509), or a test's list."""

    def append(
        self,
        action: str,
        resource: str,
        outcome: str,
        *,
        caller: Caller | None = None,
        detail: dict[str, Any] | None = None,
    ) -> object: ...


def default_audit(store: DocumentStore) -> AuditSink:
    from runvoy_core.team.audit import AuditLog

    return AuditLog(store)


class TeamBackend:
    """``Backend`` + ``TeamAdmin`` for ``caller``, over ``inner`` (the server's ``LocalBackend``) and
    ``store`` (where users, keys, policies and the audit chain live). ``require_second_factor``: admin-only
    actions (roles.ADMIN_ONLY) are refused unless the request carried a valid TOTP code."""

    def __init__(
        self,
        inner: Backend,
        store: DocumentStore,
        caller: Caller,
        *,
        audit: AuditSink | None = None,
        require_second_factor: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.inner = inner
        self.store = store
        self.caller = caller
        self.audit = audit if audit is not None else default_audit(store)
        self.require_second_factor = require_second_factor
        self.admin = LocalTeamAdmin(store) if clock is None else LocalTeamAdmin(store, clock=clock)
        self.provider_name = inner.provider_name

    # -- the one check -----------------------------------------------------------------------------------------
    def _allow(
        self,
        method: str,
        resource: str,
        *,
        team: object = _ANY_TEAM,
        target: Target | None = None,
        hidden: bool = False,
        action: str | None = None,
    ) -> Decision:
        """Decide, audit a refusal and raise it. ``team``: the team the resource belongs to ("" = none);
        ``hidden``: a refusal for another team's resource is NotFound (``NotFound`` built by the caller);
        ``action``: what this call needs beyond its method's own action (another account's keys)."""
        action = action or ACTIONS.get(method)
        caller = self.caller
        if action is None:
            decision = Decision(False, f"{method} is not an operation of the API")
        else:
            decision = decide(
                caller,
                action,
                team=None if team is _ANY_TEAM else str(team),
                target=target,
                policies=self._policies() if target is not None and caller.role == "operator" else (),
            )
            if (
                decision.allowed
                and action in roles.ADMIN_ONLY
                and self.require_second_factor
                and not caller.second_factor
            ):
                decision = Decision(False, f"{action} needs a second factor: a TOTP code (X-Runvoy-TOTP)")
        if not decision.allowed:
            self._audit(method, resource, "denied", reason=decision.reason)
            log.info(
                "team.denied", user=caller.name, method=method, resource=resource, reason=decision.reason
            )
            if hidden:
                raise _Hidden
            raise AccessDenied(
                f"{caller.name} may not {method.replace('_', ' ')} {resource}: {decision.reason}"
            )
        return decision

    def _policies(self) -> builtins.list[Policy]:
        return self.admin.policies.list()

    def _audit(self, method: str, resource: str, outcome: str, **detail: Any) -> None:
        self.audit.append(method, resource, outcome, caller=self.caller, detail=detail or None)

    def _done(self, method: str, resource: str, **detail: Any) -> None:
        self._audit(method, resource, "allowed", **detail)

    def _audited(self, method: str, resource: str, call: Callable[[], Any], **detail: Any) -> Any:
        """Run a mutating call; audit it allowed when it returns, failed when it raises runvoy's error."""
        try:
            result = call()
        except RunvoyError as exc:
            self._audit(method, resource, "failed", error=type(exc).__name__, **detail)
            raise
        self._done(method, resource, **detail)
        return result

    # -- runs and their teams ------------------------------------------------------------------------------------
    def _unknown_run(self, execution_id: str) -> NotFound:
        """What an unknown id gives (runvoy_core.engine's resolve_id), for another team's run too."""
        return NotFound(
            f"no execution {execution_id!r} on provider {self.provider_name!r}",
            hint="run: runvoy list"
            + ("" if self.provider_name == "local" else f" --provider {self.provider_name}"),
        )

    def _run_record(self, method: str, execution_id: str) -> Execution:
        """The run, if the caller may ``method`` it; another team's run is NotFound for a non-admin."""
        self._allow(method, f"execution:{execution_id}")  # the role first: refused the same for any id
        record = self.inner.get(execution_id)
        try:
            self._allow(method, f"execution:{record.id}", team=_team_of(record), hidden=True)
        except _Hidden:
            raise self._unknown_run(execution_id) from None
        return record

    def _start_target(self, request: ExecutionRequest, playbook: str | None = None) -> Target:
        if TEAM_LABEL in request.labels:
            raise ValidationFailed(
                f"label {TEAM_LABEL} is reserved: the server sets it to the team of whoever starts the run",
                hint=f"leave {TEAM_LABEL} out of --label and the playbook's labels",
            )
        return Target(
            provider=self.provider_name,
            lock=request.lock,
            playbook=playbook,
            image=request.image,
            labels=dict(request.labels),
        )

    def _with_team(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "labels": {**(options.get("labels") or {}), TEAM_LABEL: self.caller.team}}

    def _started(
        self, method: str, on_start: Callable[[RunHandle], None] | None
    ) -> Callable[[RunHandle], None]:
        """``on_start`` that first audits the run's start (an attached run returns only when it ends)."""

        def started(handle: RunHandle) -> None:
            self._done(method, f"execution:{handle.execution.id}")
            if on_start is not None:
                on_start(handle)

        return started

    # -- Backend: running ----------------------------------------------------------------------------------------
    def run(
        self,
        command: str | builtins.list[str] | ExecutionRequest,
        *,
        log_sink: LogSink | None = None,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        on_start: Callable[[RunHandle], None] | None = None,
        image_check: bool = True,
        **options: Any,
    ) -> Execution:
        command, options = self._check_start("run", command, options)
        with calling_as(self.caller):
            return self._failed_start(
                "run",
                lambda: self.inner.run(
                    command,
                    log_sink=log_sink,
                    on_message=on_message,
                    on_lock_wait=self._lock_wait_seen(on_lock_wait),
                    on_start=self._started("run", on_start),
                    image_check=image_check,
                    **options,
                ),
            )

    def submit(
        self,
        command: str | builtins.list[str] | ExecutionRequest,
        *,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        image_check: bool = True,
        **options: Any,
    ) -> Execution:
        command, options = self._check_start("submit", command, options)
        with calling_as(self.caller):
            execution = self._failed_start(
                "submit",
                lambda: self.inner.submit(
                    command,
                    on_message=on_message,
                    on_lock_wait=self._lock_wait_seen(on_lock_wait),
                    image_check=image_check,
                    **options,
                ),
            )
        self._done("submit", f"execution:{execution.id}")
        return execution

    def _check_start(
        self, method: str, command: str | builtins.list[str] | ExecutionRequest, options: dict[str, Any]
    ) -> tuple[str | builtins.list[str] | ExecutionRequest, dict[str, Any]]:
        from runvoy_core.api import build_request
        from runvoy_core.models import ExecutionRequest

        self._allow(method, "execution:new")
        request = self._audited_input(method, "execution:new", lambda: build_request(command, **options))
        self._allow(method, "execution:new", target=self._start_target(request))
        if isinstance(command, ExecutionRequest):
            labels = {**command.labels, TEAM_LABEL: self.caller.team}
            return command.model_copy(update={"labels": labels}), options
        return command, self._with_team(options)

    def _audited_input(self, method: str, resource: str, call: Callable[[], T]) -> T:
        """What a start would do, made from the caller's input; bad input is audited as a failed call."""
        try:
            return call()
        except RunvoyError as exc:
            self._audit(method, resource, "failed", error=type(exc).__name__)
            raise

    def _failed_start(self, method: str, call: Callable[[], Execution]) -> Execution:
        try:
            return call()
        except RunvoyError as exc:
            self._audit(method, "execution:new", "failed", error=type(exc).__name__)
            raise

    def _check_playbook(
        self, method: str, text: str, name: str | None, source: str | None, options: dict[str, Any]
    ) -> dict[str, Any]:
        from runvoy_core.playbook import parse_playbook

        self._allow(method, "playbook:" + (name or "-"))
        if not isinstance(text, str):
            raise ValidationFailed("a playbook is given as its YAML text")
        overrides = {k: v for k, v in options.items() if k != "image_check"}
        book = self._audited_input(
            method,
            "playbook:" + (name or "-"),
            lambda: parse_playbook(text, source=source or "<playbook>", default_name=name),
        )
        request = self._audited_input(
            method, f"playbook:{book.name or '-'}", lambda: book.to_request(**overrides)
        )
        self._allow(
            method, f"playbook:{book.name or '-'}", target=self._start_target(request, book.name or "")
        )
        return self._with_team(options)

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
        options = self._check_playbook("run_playbook", text, name, source, options)
        with calling_as(self.caller):
            return self._failed_start(
                "run_playbook",
                lambda: self.inner.run_playbook(
                    text,
                    name=name,
                    source=source,
                    log_sink=log_sink,
                    on_message=on_message,
                    on_lock_wait=self._lock_wait_seen(on_lock_wait),
                    on_start=self._started("run_playbook", on_start),
                    **options,
                ),
            )

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
        options = self._check_playbook("submit_playbook", text, name, source, options)
        with calling_as(self.caller):
            execution = self._failed_start(
                "submit_playbook",
                lambda: self.inner.submit_playbook(
                    text,
                    name=name,
                    source=source,
                    on_message=on_message,
                    on_lock_wait=self._lock_wait_seen(on_lock_wait),
                    **options,
                ),
            )
        self._done("submit_playbook", f"execution:{execution.id}")
        return execution

    # -- Backend: reading runs ---------------------------------------------------------------------------------
    def resolve_id(self, id_or_prefix: str) -> str:
        return self._run_record("resolve_id", id_or_prefix).id

    def get(self, execution_id: str) -> Execution:
        return self._run_record("get", execution_id)

    def status(self, execution_id: str) -> Execution:
        return self.inner.status(self._run_record("status", execution_id).id)

    def events(self, execution_id: str) -> builtins.list[StatusChange]:
        return self.inner.events(self._run_record("events", execution_id).id)

    def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.2,
        poll_max: float | None = None,
    ) -> Execution:
        full = self._run_record("wait", execution_id).id
        return self.inner.wait(full, timeout=timeout, poll=poll, poll_max=poll_max)

    def logs(
        self, execution_id: str, *, follow: bool = False, tail: int | None = None, pattern: str | None = None
    ) -> Iterator[LogEvent]:
        full = self._run_record("logs", execution_id).id
        return self.inner.logs(full, follow=follow, tail=tail, pattern=pattern)

    def log_page(self, execution_id: str, *, cursor: str | None = None, limit: int = 1000) -> LogPage:
        full = self._run_record("log_page", execution_id).id
        return self.inner.log_page(full, cursor=cursor, limit=limit)

    def copy_logs(self, execution_id: str, sink: LogSink, *, follow: bool = False) -> None:
        self.inner.copy_logs(self._run_record("copy_logs", execution_id).id, sink, follow=follow)

    def list(
        self,
        *,
        statuses: set[Status] | None = None,
        limit: int = 50,
        since: datetime | None = None,
        labels: dict[str, str] | None = None,
        refresh: bool = True,
    ) -> builtins.list[Execution]:
        self._allow("list", "executions")
        wanted = dict(labels or {})
        if self.caller.role != "admin":
            if wanted.get(TEAM_LABEL, self.caller.team) != self.caller.team:
                return []  # another team's runs: none visible, as if there were none
            wanted[TEAM_LABEL] = self.caller.team
        return self.inner.list(
            statuses=statuses, limit=limit, since=since, labels=wanted or None, refresh=refresh
        )

    # -- Backend: acting -----------------------------------------------------------------------------------------
    def kill(self, execution_id: str, *, force: bool = False, wait: float | None = None) -> Execution:
        record = self._run_record("kill", execution_id)
        resource = f"execution:{record.id}"
        with calling_as(self.caller):
            result: Execution = self._audited(
                "kill", resource, lambda: self.inner.kill(record.id, force=force, wait=wait), force=force
            )
        return result

    def reconcile(self, *, dry_run: bool = False) -> builtins.list[dict[str, Any]]:
        self._allow("reconcile", "executions")
        with calling_as(self.caller):
            found: builtins.list[dict[str, Any]] = self._audited(
                "reconcile", "executions", lambda: self.inner.reconcile(dry_run=dry_run), dry_run=dry_run
            )
        return found

    # -- Backend: locks ------------------------------------------------------------------------------------------
    def _holder_team(self, lock: dict[str, Any], *, held_only: bool = True) -> str:
        """The team of the run holding ``lock`` ("" when none holds it, or its run has no team); with
        ``held_only=False`` also the team of the run that held it last."""
        holder = lock.get("holder") or {}
        execution_id = holder.get("execution_id") if isinstance(holder, dict) else None
        if (held_only and lock.get("state") != "held") or not isinstance(execution_id, str):
            return ""
        return self._team_of_run(execution_id)

    def _team_of_run(self, execution_id: str) -> str:
        try:
            return _team_of(self.inner.get(execution_id))
        except NotFound:
            return ""

    def _sees_lock(self, lock: dict[str, Any]) -> bool:
        """A non-admin sees the locks its team's runs hold or held last: lock names and holders of another
        team are as unknown to it as a name nobody ever used (issue 15: no reading another team's locks)."""
        return self.caller.role == "admin" or self._holder_team(lock, held_only=False) == self.caller.team

    def _own_queue(self, lock: dict[str, Any]) -> dict[str, Any]:
        """The lock with only the caller's team's runs in its queue (others' show as a count)."""
        queue = lock.get("queue")
        if self.caller.role == "admin" or not isinstance(queue, builtins.list):
            return lock
        mine = [
            entry
            for entry in queue
            if isinstance(entry, dict)
            and isinstance(entry.get("execution_id"), str)
            and self._team_of_run(entry["execution_id"]) == self.caller.team
        ]
        return {**lock, "queue": mine, "queued_by_others": len(queue) - len(mine)}

    def _unknown_lock(self, name: str) -> NotFound:
        """What a lock name nobody used gives (runvoy_core.engine), for another team's lock too."""
        return NotFound(f"no lock named {name!r}", hint="run: runvoy locks list")

    def _visible_lock(self, method: str, name: str) -> dict[str, Any]:
        self._allow(method, f"lock:{name}")
        lock = self.inner.lock_status(name)
        if not self._sees_lock(lock):
            self._audit(method, f"lock:{name}", "denied", reason="another team's lock")
            raise self._unknown_lock(name)
        return lock

    def list_locks(self) -> builtins.list[dict[str, Any]]:
        self._allow("list_locks", "locks")
        return [lock for lock in self.inner.list_locks() if self._sees_lock(lock)]

    def lock_status(self, name: str) -> dict[str, Any]:
        return self._own_queue(self._visible_lock("lock_status", name))

    def _lock_wait_seen(
        self, on_lock_wait: Callable[[LockRecord, float], None] | None
    ) -> Callable[[LockRecord, float], None] | None:
        """The lock-wait callback, shown another team's holder as nobody (the caller named the lock, so its
        name is no secret; who holds it is)."""
        if on_lock_wait is None or self.caller.role == "admin":
            return on_lock_wait
        callback = on_lock_wait

        def seen(record: LockRecord, waited: float) -> None:
            from runvoy_core.models import LockHolder

            execution_id = record.holder.execution_id
            if execution_id is None or self._team_of_run(execution_id) != self.caller.team:
                record = record.model_copy(update={"holder": LockHolder()})
            callback(record, waited)

        return seen

    def release_lock(self, name: str, *, force: bool = False, version: str | None = None) -> dict[str, Any]:
        resource = f"lock:{name}"
        self._allow("release_lock", resource)
        if self.caller.role != "admin":
            lock = self._visible_lock("release_lock", name)
            holder_team = self._holder_team(lock)
            if lock.get("state") == "held":
                self._allow("release_lock", resource, team=holder_team)
                # released only as it was checked: a new holder (of another team) in between is a conflict
                version = version or lock.get("version")
        with calling_as(self.caller):
            result: dict[str, Any] = self._audited(
                "release_lock",
                resource,
                lambda: self.inner.release_lock(name, force=force, version=version),
                force=force,
            )
        return result

    # -- Backend: cost, budgets, providers -------------------------------------------------------------------------
    def estimate_cost(self, **options: Any) -> dict[str, Any]:
        self._allow("estimate_cost", "cost")
        return self.inner.estimate_cost(**options)

    def cost_report(
        self, *, since: float = 7 * 86400, by: str = "provider", provider: str | None = None
    ) -> dict[str, Any]:
        self._allow("cost_report", "cost")
        return self.inner.cost_report(since=since, by=by, provider=provider)

    def list_budgets(self) -> builtins.list[dict[str, Any]]:
        self._allow("list_budgets", "budgets")
        return self.inner.list_budgets()

    def show_budget(self, name: str) -> dict[str, Any]:
        self._allow("show_budget", f"budget:{name}")
        return self.inner.show_budget(name)

    def set_budget(self, name: str, **options: Any) -> dict[str, Any]:
        resource = f"budget:{name}"
        self._allow("set_budget", resource)
        result: dict[str, Any] = self._audited(
            "set_budget", resource, lambda: self.inner.set_budget(name, **options)
        )
        return result

    def remove_budget(self, name: str) -> None:
        resource = f"budget:{name}"
        self._allow("remove_budget", resource)
        self._audited("remove_budget", resource, lambda: self.inner.remove_budget(name))

    def list_providers(self) -> dict[str, Any]:
        self._allow("list_providers", "providers")
        return self.inner.list_providers()

    def close(self) -> None:
        """Nothing: the inner backend is the server's, shared by every request."""

    def team(self) -> TeamAdmin:
        """Itself: its TeamAdmin methods are the caller's checked view."""
        return self

    # -- TeamAdmin ---------------------------------------------------------------------------------------------
    def whoami(self) -> Identity:
        self._allow("whoami", f"user:{self.caller.name}")
        return Identity.of(self.caller)

    def create_user(self, name: str, *, role: str, team: str, kind: str = "user") -> User:
        resource = f"user:{name}"
        self._allow("create_user", resource)
        with calling_as(self.caller):
            user: User = self._audited(
                "create_user",
                resource,
                lambda: self.admin.create_user(name, role=role, team=team, kind=kind),
                role=role,
                team=team,
                kind=kind,
            )
        return user

    def list_users(self, *, team: str | None = None) -> builtins.list[User]:
        self._allow("list_users", "users")
        if self.caller.role != "admin":
            if team is not None and team != self.caller.team:
                return []
            team = self.caller.team
        return self.admin.list_users(team=team)

    def show_user(self, name: str) -> User:
        self._allow("show_user", f"user:{name}")
        user = self.admin.show_user(name)
        try:
            self._allow("show_user", f"user:{name}", team=user.team, hidden=True)
        except _Hidden:
            raise NotFound(f"no user {name!r}", hint="list them with: runvoy users list") from None
        return user

    def disable_user(self, name: str) -> User:
        resource = f"user:{name}"
        self._allow("disable_user", resource)
        if name == self.caller.name:
            raise ValidationFailed("an admin cannot disable their own account", hint="ask another admin")
        user: User = self._audited("disable_user", resource, lambda: self.admin.disable_user(name))
        return user

    def enable_user(self, name: str) -> User:
        resource = f"user:{name}"
        self._allow("enable_user", resource)
        user: User = self._audited("enable_user", resource, lambda: self.admin.enable_user(name))
        return user

    def create_key(self, user: str, *, name: str = "default", expires_in: float | None = None) -> NewKey:
        resource = f"user:{user}"
        self._allow("create_key", resource)
        with calling_as(self.caller):
            made: NewKey = self._audited(
                "create_key", resource, lambda: self.admin.create_key(user, name=name, expires_in=expires_in)
            )
        self._done_key(made)
        return made

    def _done_key(self, made: NewKey) -> None:
        log.info("team.key_issued", key_id=made.key.id, user=made.key.user, by=self.caller.name)

    def list_keys(self, *, user: str | None = None) -> builtins.list[KeyInfo]:
        self._allow("list_keys", "keys")
        if self.caller.role != "admin":
            if user is not None and user != self.caller.name:
                self._allow("list_keys", f"user:{user}", action=roles.KEYS_WRITE)
            user = self.caller.name
        return self.admin.list_keys(user=user)

    def _own_key(self, method: str, key_id: str) -> KeyInfo:
        """The key, if the caller may ``method`` it: a non-admin only its own (others' are NotFound)."""
        self._allow(method, f"key:{key_id}")
        info = self.admin.keys.show(key_id)
        if self.caller.role != "admin" and info.user != self.caller.name:
            self._audit(method, f"key:{key_id}", "denied", reason="another account's key")
            raise NotFound(f"no key {key_id!r}", hint="list them with: runvoy keys list")
        if self.caller.role == "admin":
            self._allow(method, f"key:{key_id}", action=roles.KEYS_WRITE)  # the second factor, when required
        return info

    def revoke_key(self, key_id: str) -> KeyInfo:
        self._own_key("revoke_key", key_id)
        info: KeyInfo = self._audited("revoke_key", f"key:{key_id}", lambda: self.admin.revoke_key(key_id))
        return info

    def rotate_key(
        self, key_id: str, *, overlap: float | None = None, expires_in: float | None = None
    ) -> NewKey:
        self._own_key("rotate_key", key_id)
        with calling_as(self.caller):
            made: NewKey = self._audited(
                "rotate_key",
                f"key:{key_id}",
                lambda: self.admin.rotate_key(key_id, overlap=overlap, expires_in=expires_in),
            )
        self._done_key(made)
        return made

    def set_policy(self, policy: Policy | dict[str, Any]) -> Policy:
        given = (
            policy.name
            if isinstance(policy, Policy)
            else policy.get("name")
            if isinstance(policy, dict)
            else None
        )
        name = given if isinstance(given, str) else "-"
        resource = f"policy:{name}"
        self._allow("set_policy", resource)
        with calling_as(self.caller):
            result: Policy = self._audited("set_policy", resource, lambda: self.admin.set_policy(policy))
        return result

    def list_policies(self) -> builtins.list[Policy]:
        self._allow("list_policies", "policies")
        return self.admin.list_policies()

    def show_policy(self, name: str) -> Policy:
        self._allow("show_policy", f"policy:{name}")
        return self.admin.show_policy(name)

    def remove_policy(self, name: str) -> Policy:
        resource = f"policy:{name}"
        self._allow("remove_policy", resource)
        result: Policy = self._audited("remove_policy", resource, lambda: self.admin.remove_policy(name))
        return result

    def audit_verify(self, *, anchor: tuple[int, str] | None = None) -> AuditReport:
        self._allow("audit_verify", "audit")
        return self.admin.audit_verify(anchor=anchor)

    def audit_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 1000,
    ) -> builtins.list[AuditEntry]:
        self._allow("audit_entries", "audit")
        return self.admin.audit_entries(since=since, until=until, after_seq=after_seq, limit=limit)


class _Hidden(Exception):
    """A refusal to show as NotFound (another team's resource)."""


def _team_of(record: Execution) -> str:
    return record.request.labels.get(TEAM_LABEL, "")


if TYPE_CHECKING:

    def _conforms(backend: TeamBackend) -> tuple[Backend, TeamAdmin]:
        """mypy checks here that TeamBackend implements both Protocols, signature by signature."""
        as_backend: Backend = backend
        as_admin: TeamAdmin = backend
        return as_backend, as_admin
