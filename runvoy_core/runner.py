"""The lifecycle of an execution: validate → lock → record → start → watch → finalize.

Every step is written to the record before the next one begins, so a crash at any point leaves something
that a later reader (``status``, ``wait``, ``list``, ``reconcile``) can converge: a record without a task is
looked up by execution id (the idempotency key) and either adopted or marked LOST; a record whose task ended
is finalized by whoever sees it first.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from runvoy_core import lifecycle
from runvoy_core.errors import (
    AlreadyExists,
    LockLost,
    RunvoyError,
    StaleFence,
    StartFailed,
    TaskUnrecorded,
    TransientProviderError,
    VersionConflict,
)
from runvoy_core.logging import current_request_id, get_logger, new_request_id
from runvoy_core.models import (
    Execution,
    ExecutionRequest,
    LockHolder,
    LockRecord,
    LogEvent,
    LogPage,
    OnConflict,
    Status,
    StatusChange,
    StopReason,
    new_execution_id,
    utcnow,
)
from runvoy_core.polling import CALLS, DESCRIBE, LOGS_READ, SharedPoller, Watch, poller_for
from runvoy_core.ports import Capability, LockRegister, Provider, StorePort, TaskPhase, TaskSpec, TaskState

if TYPE_CHECKING:
    from pathlib import Path

    import pluggy

    from runvoy_core.locks import Lease, LockManager

from runvoy_core.ports.optional import (
    ArchivingLogs,
    CostRollups,
    FileRangeLogs,
    PollHints,
    RangeSink,
    RawChunkLogs,
    RawSink,
    SecretValues,
    WaitingCompute,
)

if TYPE_CHECKING:
    from runvoy_core.masking import TextMasker

log = get_logger("runvoy.runner")

START_ATTEMPTS = 4
# a record still PENDING/STARTING without a task after this long was orphaned by a dead submitter
ORPHAN_AFTER = timedelta(seconds=60)
# after the stop grace, how long to wait before escalating to a forced stop
KILL_MARGIN = 5.0
LOG_PAGE = 5000
NATIVE_TIMEOUT_MARGIN = 5.0
FINAL_READ_ATTEMPTS = 5
WRITE_ATTEMPTS = 5
# writes of a started task's ref, tried over ~8 s before the task is stopped rather than left unrecorded
START_WRITE_ATTEMPTS = 6
# how long a provider may say it does not know a task before the run is searched for and marked LOST
UNKNOWN_GRACE = 30.0
# how long a lock holder may lack a record (seen on the observer's clock) before its run is recorded LOST
ABSENT_HOLDER_GRACE = 10.0


class LogSink(Protocol):
    def write_events(self, events: list[LogEvent]) -> None: ...


Messages = Callable[[str], None]


@dataclass
class RunHandle:
    """An execution being watched by this process."""

    execution: Execution
    lease: Lease | None = None
    log_cursor: str | None = None
    cancel: StopReason | None = None  # CANCEL or KILL, set from a signal handler
    stop_sent_at: float | None = None
    kill_sent: bool = False
    next_renew: float = 0.0
    renew_failing_since: float | None = None
    history: list[Status] = field(default_factory=list)
    poll: Watch | None = None
    """Its task's subscription to the provider's shared poller, while ``watch`` runs (decision 0026)."""


@dataclass
class Follow:
    """A reader that refreshes one run again and again until it ends (``Runvoy.wait``): with the shared
    poller, each ``refresh`` takes its task's state from the poller's rounds (``interval``: seconds since the
    last), and ``waited`` says the poller already made it wait, so it sleeps no more."""

    interval: float = 0.0
    poll: Watch | None = None
    waited: bool = False

    def close(self) -> None:
        if self.poll is not None:
            self.poll.close()
            self.poll = None


def _host() -> str:
    return os.uname().nodename  # what socket.gethostname() returns, without importing socket


class Runner:
    def __init__(
        self,
        provider: Provider,
        *,
        store: StorePort,
        register: LockRegister,
        lock_lease: float = 30.0,
        poll_max: float = 5.0,
        user: str = "unknown",
        hooks: pluggy.PluginManager | None = None,
        home: Path | None = None,
        notify_url: str | None = None,
        equivalent_providers: tuple[str, ...] | Callable[[], tuple[str, ...]] = (),
        start_timeout: float = 900.0,
        notify_timeout: float = 5.0,
        unknown_grace: float = UNKNOWN_GRACE,
        capabilities: frozenset[Capability] = frozenset(),
    ) -> None:
        self.capabilities = capabilities
        """What the provider's spec declares: the one source the runner checks a request against."""
        self.unknown_grace = unknown_grace
        self.notify_timeout = notify_timeout
        self.start_timeout = start_timeout
        self.provider = provider
        self.store = store
        self.register = register
        self.lock_lease = lock_lease
        self.poll_min, self.poll_max = 0.05, poll_max
        if isinstance(provider, PollHints):
            self.poll_min = float(provider.poll_interval_min)
            if provider.poll_interval_max is not None:
                self.poll_max = float(provider.poll_interval_max)
        self._user = user
        self.hooks = hooks
        self.home = home
        self.notify_url = notify_url
        self.equivalent_providers = equivalent_providers
        self._locks: LockManager | None = None
        self.shared_polling = not isinstance(provider.compute, WaitingCompute)
        """Watchers share one poller per provider (decision 0026); a compute that can wait on a task's end
        costs no call per poll and keeps its native wait. The benchmark turns it off for "before"."""
        self._absent_holders: dict[str, float] = {}
        self.absent_holder_grace = ABSENT_HOLDER_GRACE
        self._maskers: dict[str, TextMasker | None] = {}

    @property
    def user(self) -> str:
        """Who starts runs: the server's caller during a request (``calling_as``), this process's user
        otherwise; recorded as the run's and the lock holder's ``user``."""
        from runvoy_core.team.context import current_caller

        caller = current_caller()
        return caller.name if caller is not None else self._user

    # -- locks ------------------------------------------------------------------------------------------
    @property
    def locks(self) -> LockManager:
        if self._locks is None:
            from runvoy_core.locks import LockManager

            self._locks = LockManager(self.register, lease=self.lock_lease, holder_status=self._holder_status)
        return self._locks

    def _stop_holder(self, holder: LockHolder, by: str, lock: str, on_message: Messages | None) -> bool:
        """--on-conflict cancel: stop the run holding ``lock`` so that ``by`` can take it. True once a stop
        is recorded on the holder's execution. A holder on another provider, or one not started yet (no
        task to stop), is left alone for now: the acquisition waits, and asks again."""
        say = on_message or (lambda text: log.info("lock.cancel", message=text))
        if holder.provider != self.provider.name or not holder.execution_id:
            where = (
                f"a run on provider {holder.provider!r}"
                if holder.execution_id
                else "a holder that is not a run"
            )
            say(f"lock {lock!r} is held by {where}, which this run cannot stop; waiting for it instead")
            return True  # nothing to try again: wait as --on-conflict wait does
        record = self.store.get(holder.execution_id)
        if record is None or record.status.is_terminal:
            return False
        if record.stop_requested is None:
            record = self.request_stop(record, force=False, why=StopReason.SUPERSEDED, detail={"by": by})
            if record.stop_requested is None:
                return False
            say(f"stopping {record.id}, which holds lock {lock!r} (--on-conflict cancel)")
        return True

    def _holder_status(self, holder: LockHolder) -> str:
        """Whether the execution holding a lock still runs: asks the store, then the provider."""
        if not holder.execution_id:
            return "unknown"
        record = self.store.get(holder.execution_id)
        if record is None:
            return self._holder_never_recorded(holder)
        self._absent_holders.pop(holder.execution_id, None)
        if record.status.is_terminal:
            return "ended"
        try:
            record = self.refresh(record, release_lock=False)
        except RunvoyError:
            return "unknown"
        return "ended" if record.status.is_terminal else "running"

    def _holder_never_recorded(self, holder: LockHolder) -> str:
        """A holder whose execution has no record: its submitter took the lock and died before recording
        the run (the record follows the grant by milliseconds). Once this process has seen it missing for
        ``ABSENT_HOLDER_GRACE`` seconds, a LOST record is created for it, create-if-absent: if that wins,
        the submitter can never record (nor start) its run, and the holder has "ended"; if the submitter's
        own create won meanwhile, the holder is asked about again like any other."""
        assert holder.execution_id is not None
        if holder.provider not in (None, self.provider.name):
            return "unknown"  # its record would be in another provider's store
        first = self._absent_holders.setdefault(holder.execution_id, time.monotonic())
        if time.monotonic() - first < self.absent_holder_grace:
            return "unknown"
        try:
            request = ExecutionRequest(command=holder.command or "true")
        except Exception:
            request = ExecutionRequest(command="true")
        reason = "never recorded: its submitter stopped between taking the lock and recording the run"
        tombstone = Execution(
            id=holder.execution_id,
            provider=self.provider.name,
            request=request,
            status=Status.LOST,
            reason=reason,
            user=holder.user,
            host=holder.host,
            finished_at=utcnow(),
        )
        try:
            self.store.create(tombstone)
        except AlreadyExists:
            self._absent_holders.pop(holder.execution_id, None)
            return "unknown"
        self._event(tombstone, Status.LOST, "finished", reason=reason)
        log.warning("lock.holder_never_recorded", execution_id=holder.execution_id)
        return "ended"

    # -- 1. validate --------------------------------------------------------------------------------------
    def validate(self, request: ExecutionRequest, on_message: Messages | None = None) -> None:
        from runvoy_core.errors import CapabilityMissing

        caps = self.capabilities
        needs = []
        if request.image and Capability.IMAGE not in caps:
            self.provider.compute.validate(request)  # the provider explains how to enable images
            needs.append((Capability.IMAGE, "--image"))
        if request.resources.spot and Capability.SPOT not in caps:
            needs.append((Capability.SPOT, "--spot"))
        if request.resources.architecture.value == "arm64" and Capability.ARM64 not in caps:
            needs.append((Capability.ARM64, "--arch arm64"))
        if request.secrets and Capability.SECRETS not in caps:
            needs.append((Capability.SECRETS, "--secret"))
        if needs:
            missing = ", ".join(f"{flag} ({cap.value})" for cap, flag in needs)
            raise CapabilityMissing(f"provider {self.provider.name!r} does not support {missing}")
        self.provider.compute.validate(request)
        if self.home is not None:
            from runvoy_core.cost.budgets import check_budgets

            warnings = check_budgets(
                request,
                provider=self.provider.name,
                region=request.region or self.provider.region,
                user=self.user,
                home=self.home,
                hooks=self.hooks,
                notify_url=self.notify_url,
                store=self.store,
                notify_timeout=self.notify_timeout,
            )
            for line in warnings:
                (on_message or log.warning)(line)

    # -- 2-4. lock, record, start -------------------------------------------------------------------------
    def start(
        self,
        request: ExecutionRequest,
        *,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        execution_id: str | None = None,
    ) -> RunHandle:
        self.validate(request, on_message)
        execution_id = execution_id or new_execution_id()
        request_id = current_request_id() or new_request_id()
        region = request.region or self.provider.region
        lease = self._take_lock(request, execution_id, on_message, on_lock_wait)
        try:
            execution = Execution(
                id=execution_id,
                provider=self.provider.name,
                region=region,
                request=request,
                request_id=request_id,
                user=self.user,
                host=_host(),
                lock=lease.name if lease else None,  # with slots, the slot it holds: "etl#2"
                fence=lease.fence if lease else None,
                lock_owner=lease.owner_id if lease else None,
            )
            if request.timeout:
                execution.deadline = execution.created_at + timedelta(seconds=request.timeout)
            try:
                execution = self.store.create(execution)
            except AlreadyExists:
                if lease is None:
                    raise
                # a waiter found the lock held by a run with no record and recorded it LOST (see
                # _holder_never_recorded): this run must not start, the lock is no longer its own
                raise LockLost(
                    f"lock {lease.name!r} was taken over before this run was recorded (recording took "
                    f"longer than {self.absent_holder_grace:g}s); nothing was started",
                    hint="run it again; if the store is slow, check its health",
                ) from None
            self._event(execution, Status.PENDING, "created", provider=self.provider.name, region=region)
        except BaseException:
            if lease is not None:
                lease.release()
            raise
        handle = RunHandle(execution=execution, lease=lease)
        if lease is not None:
            handle.next_renew = time.monotonic() + lease.renew_interval
        try:
            self._start_task(handle)
        except (KeyboardInterrupt, SystemExit):
            # the task may have started: leave the record for the next reader to converge (find by id)
            raise
        except TaskUnrecorded as exc:
            # best effort: the store failed a moment ago; if this write fails too, the record stays PENDING
            # and readers adopt the task through ``find`` once ORPHAN_AFTER has passed
            keep_lock = not exc.details.get("stopped")
            with contextlib.suppress(RunvoyError):
                self._finish_without_task(handle, Status.FAILED, exc.message, release_lock=not keep_lock)
            raise
        except BaseException as exc:
            reason = exc.message if isinstance(exc, RunvoyError) else f"{type(exc).__name__}: {exc}"
            self._finish_without_task(handle, Status.FAILED, f"failed to start: {reason}")
            if isinstance(exc, RunvoyError):
                raise
            raise StartFailed(f"failed to start the task: {reason}") from exc
        return handle

    def _take_lock(
        self,
        request: ExecutionRequest,
        execution_id: str,
        on_message: Messages | None,
        on_lock_wait: Callable[[LockRecord, float], None] | None,
    ) -> Lease | None:
        """The lease on the request's lock (None without one), in its conflict mode: fail, wait, queue,
        cancel, or one of N slots."""
        if not request.lock:
            return None
        holder = LockHolder(
            execution_id=execution_id,
            provider=self.provider.name,
            user=self.user,
            host=_host(),
            command=request.shell_command()[:200],
            acquired_at=utcnow(),
        )
        if request.on_conflict == OnConflict.QUEUE:
            return self.locks.acquire_queued(
                request.lock, holder, timeout=request.lock_timeout, on_wait=on_lock_wait
            )
        if request.lock_slots > 1:
            return self.locks.acquire_slot(
                request.lock,
                request.lock_slots,
                holder,
                mode=request.on_conflict,
                timeout=request.lock_timeout,
                on_wait=on_lock_wait,
            )
        lock = request.lock
        return self.locks.acquire(
            lock,
            holder,
            mode=request.on_conflict,
            timeout=request.lock_timeout,
            on_wait=on_lock_wait,
            stop_holder=lambda held: self._stop_holder(held, execution_id, lock, on_message),
        )

    def _task_env(self, execution: Execution) -> dict[str, str]:
        env = {"RUNVOY_EXECUTION_ID": execution.id, "RUNVOY_REQUEST_ID": execution.request_id or ""}
        if execution.lock:
            env["RUNVOY_LOCK"] = execution.lock
            env["RUNVOY_FENCE"] = str(execution.fence)
        return env

    def _start_task(self, handle: RunHandle) -> None:
        execution = handle.execution
        spec = TaskSpec.from_request(
            execution.id, execution.request, env=self._task_env(execution), request_id=execution.request_id
        )
        compute = self.provider.compute
        if execution.lock and execution.fence is not None:
            from runvoy_core.locks import check_fence

            try:
                check_fence(self.register, execution.lock, execution.fence)
            except StaleFence:
                raise LockLost(
                    f"lock {execution.lock!r} was taken over before the task started; nothing was started"
                ) from None
        ref: str | None = None
        delay = 0.5
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                ref = compute.start(spec, execution.id)
                break
            except TransientProviderError as exc:
                # the start may have happened server-side: look before starting again
                log.warning("start.transient", attempt=attempt, error=str(exc))
                try:
                    ref = compute.find(execution.id)
                except TransientProviderError:
                    ref = None
                if ref is not None:
                    break
                if attempt == START_ATTEMPTS:
                    raise
                time.sleep(delay)
                delay *= 2
        assert ref is not None
        execution.task_ref = ref
        execution.status = Status.STARTING
        try:
            handle.execution = self._record_started(handle, execution)
        except StaleFence:
            # the lock was taken over while the task started: the task ref must still be recorded (a task
            # nobody can find would run on unseen), then the task is stopped
            handle.execution = self._write(handle, execution, check_fence=False)
            self._event(handle.execution, Status.STARTING, "started", task_ref=ref)
            self._stop(
                handle,
                StopReason.LOCK_LOST,
                force=False,
                because="the lock was taken over while the task started",
            )
            return
        self._event(handle.execution, Status.STARTING, "started", task_ref=ref)

    def _record_started(self, handle: RunHandle, execution: Execution) -> Execution:
        """Write the task's ref into the record, retrying a store that fails for a while: once a task runs,
        its record must say so. If the store keeps failing, the task is stopped — never left running under a
        record that says it never started — and ``TaskUnrecorded`` says whether the stop was sent."""
        delay = 0.25
        for attempt in range(1, START_WRITE_ATTEMPTS + 1):
            try:
                return self._write(handle, execution)
            except TransientProviderError as exc:
                if attempt == START_WRITE_ATTEMPTS:
                    failure = exc
                    break
                log.warning("start.record_transient", attempt=attempt, error=str(exc))
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
        ref = execution.task_ref
        assert ref is not None
        try:
            self.provider.compute.stop(ref, 0, force=True)
            stopped = True
        except Exception as exc:  # the next reader adopts the task by execution id and stops or watches it
            log.warning("start.unrecorded_stop_failed", error=str(exc))
            stopped = False
        raise TaskUnrecorded(
            f"the task {ref} started but its record could not be updated ({failure.message}); "
            + (
                "the task was stopped"
                if stopped
                else "stopping it failed too: `runvoy reconcile` will find it"
            ),
            stopped=stopped,
        )

    # -- 5. watch ------------------------------------------------------------------------------------------
    def watch(self, handle: RunHandle, sink: LogSink | None = None) -> Execution:
        """Poll until the task ends, streaming logs, renewing the lock, enforcing timeout and cancel."""
        try:
            return self._watch(handle, sink)
        finally:
            if handle.poll is not None:
                handle.poll.close()
                handle.poll = None

    def _watch(self, handle: RunHandle, sink: LogSink | None) -> Execution:
        interval = self.poll_min
        paused = 0.0  # the shared poller waits this long since the last state (the sleep of _pause)
        while True:
            state = self._describe(handle, paused)
            if sink is not None:
                self._pump_logs(handle, sink)
            if state is not None and state.ended:
                return self.finalize(handle, state, sink)
            try:
                if state is not None:
                    self._observe_active(handle, state)
                self._renew(handle)
                self._enforce(handle)
            except StaleFence:
                # a newer holder has the lock: this run must not go on alongside it
                if handle.execution.stop_requested != StopReason.LOCK_LOST:
                    self._stop(
                        handle,
                        StopReason.LOCK_LOST,
                        force=False,
                        because="a newer holder was granted the lock",
                    )
            if handle.poll is None:
                self._pause(handle, interval)
            paused = interval
            interval = min(interval * 1.5, self.poll_max)
            if handle.cancel or handle.stop_sent_at:
                interval = min(interval, 0.5)

    def _pause(self, handle: RunHandle, interval: float) -> None:
        """Sleep between polls; a provider that can block on the task's end (local) wakes us at once."""
        compute = self.provider.compute
        ref = handle.execution.task_ref
        if (
            not isinstance(compute, WaitingCompute)
            or ref is None
            or handle.execution.unknown_since is not None
        ):
            time.sleep(interval)
            return
        try:
            compute.wait(ref, interval)
        except TransientProviderError:
            time.sleep(interval)

    @property
    def poller(self) -> SharedPoller:
        """The process's poller of this provider (shared with every runner of the same provider object)."""
        return poller_for(self.provider.compute, provider=self.provider.name, poll_min=self.poll_min)

    def _task_state(self, handle: RunHandle, interval: float | None) -> TaskState:
        """``describe``; a watcher (``interval``: seconds since its last state) asks the shared poller."""
        ref = handle.execution.task_ref
        assert ref is not None
        if interval is None or not self.shared_polling:
            CALLS.add(self.provider.name, DESCRIBE)
            return self.provider.compute.describe(ref)
        if handle.poll is not None and handle.poll.ref != ref:
            handle.poll.close()  # the run adopted another task (decision 0010): follow that one
            handle.poll = None
        if handle.poll is None:
            handle.poll = self.poller.watch(ref)
        return handle.poll.next(interval)

    def _describe(self, handle: RunHandle, interval: float | None = None) -> TaskState | None:
        """The task's state; None while nothing can be concluded (a transient error, or a task the provider
        does not know yet). An UNKNOWN state is returned only once the run is known to be lost."""
        assert handle.execution.task_ref is not None
        try:
            state = self._task_state(handle, interval)
        except TransientProviderError as exc:
            log.warning("describe.transient", error=str(exc))
            return None
        if state.phase != TaskPhase.UNKNOWN:
            if handle.execution.unknown_since is not None:
                self._known_again(handle)
            return state
        return self._confirm_unknown(handle, state)

    def _known_again(self, handle: RunHandle) -> None:
        execution = handle.execution
        log.info("describe.known_again", execution_id=execution.id, since=str(execution.unknown_since))
        execution.unknown_since = None
        try:
            handle.execution = self._write(handle, execution)
        except (VersionConflict, StaleFence):
            pass  # only a marker: the next unknown answer starts a new grace period

    def _confirm_unknown(self, handle: RunHandle, state: TaskState) -> TaskState | None:
        """A provider that says it does not know the task is not believed at once: right after a start
        (ECS answers MISSING until it is consistent) or in a passing outage it is wrong, and a run marked
        LOST while its task runs on is watched by nobody and billed forever. The run becomes LOST only after
        the provider kept saying so for ``unknown_grace`` seconds (counted from a time kept in the record,
        so every reader agrees), the task was searched for by execution id, and any task found was stopped."""
        execution = handle.execution
        now = utcnow()
        if execution.unknown_since is None:
            execution.unknown_since = now
            try:
                handle.execution = self._write(handle, execution)
            except (VersionConflict, StaleFence):
                return None
            self._event(handle.execution, None, "task_unknown", reason=state.reason)
            if self.unknown_grace > 0:
                return None
        elif (now - execution.unknown_since).total_seconds() < self.unknown_grace:
            return None
        compute = self.provider.compute
        try:
            found = compute.find(execution.id)
        except TransientProviderError as exc:
            log.warning("find.transient", execution_id=execution.id, error=str(exc))
            return None
        if found is not None and found != execution.task_ref:
            # the task is known under another ref (a retried start recorded the other answer): adopt it
            try:
                other = compute.describe(found)
            except TransientProviderError:
                return None
            if other.phase != TaskPhase.UNKNOWN:
                execution.task_ref, execution.unknown_since = found, None
                handle.execution = self._write(handle, execution, check_fence=False)
                self._event(handle.execution, None, "task_adopted", task_ref=found)
                return other
        waited = f"{(now - (execution.unknown_since or now)).total_seconds():.0f}s"
        said = state.reason or "the provider does not know this task"
        if found is None:
            reason = f"{said} (for {waited}); no task was found for this execution"
        else:
            try:
                compute.stop(found, 0, force=True)
            except TransientProviderError as exc:
                log.warning("stop.transient", execution_id=execution.id, error=str(exc))
                return None  # not LOST while a task may still run: try again on the next look
            reason = f"{said} (for {waited}); its task {found} was found and stopped"
        log.warning("task.lost", execution_id=execution.id, reason=reason)
        return state.model_copy(update={"reason": reason, "stopped_at": state.stopped_at or now})

    def log_masker(self, execution: Execution) -> TextMasker | None:
        """What hides the run's secrets in the output read back from a provider that injects them itself
        (decision 1901); None when there is nothing to hide, or nothing runvoy can read to hide it (a
        warning says so: masking guards against showing a secret by accident, it is no access control)."""
        names = execution.request.secrets
        if not names or not isinstance(self.provider, SecretValues):
            return None
        if execution.id in self._maskers:
            return self._maskers[execution.id]
        from runvoy_core.masking import text_masker

        try:
            masker = text_masker(self.provider.secret_values(list(names)))
        except Exception as exc:
            log.warning("logs.secrets_not_masked", execution_id=execution.id, secrets=names, error=str(exc))
            masker = None
        if len(self._maskers) >= 256:  # a server reads the logs of many runs: keep the recent ones
            self._maskers.pop(next(iter(self._maskers)))
        self._maskers[execution.id] = masker
        return masker

    def read_logs(
        self, execution: Execution, ref: str, cursor: str | None, limit: int, pattern: str | None = None
    ) -> LogPage:
        """One page from the provider, with the run's secrets masked (and ``pattern`` applied to the masked
        lines: a grep for a secret's characters finds nothing)."""
        page = (
            self.provider.logs.read(ref, cursor, limit, pattern)
            if pattern is not None
            else self.provider.logs.read(ref, cursor, limit)
        )
        masker = self.log_masker(execution)
        return page if masker is None else masker.mask_page(page, pattern)

    def _pump_logs(self, handle: RunHandle, sink: LogSink, final: bool = False) -> None:
        ref = handle.execution.task_ref
        if ref is None:
            return
        masker = self.log_masker(handle.execution)
        raw = self._raw_copy(sink) if masker is None else None
        failures = 0
        for _ in range(10_000):
            CALLS.add(self.provider.name, LOGS_READ)
            try:
                if raw is not None:
                    read_raw, write_raw = raw
                    chunks, cursor = read_raw(ref, handle.log_cursor)
                    if not chunks:
                        return
                    for chunk in chunks:
                        write_raw(chunk)
                    handle.log_cursor = cursor
                    continue
                page = self.provider.logs.read(ref, handle.log_cursor, LOG_PAGE)
            except TransientProviderError as exc:
                log.warning("logs.transient", error=str(exc))
                if not final or failures >= FINAL_READ_ATTEMPTS:
                    return
                # the final read is the last chance to show the run's last lines live: retry it
                failures += 1
                time.sleep(0.2 * failures)
                continue
            if page.cursor is not None:
                handle.log_cursor = page.cursor
            if not page.events:
                return
            sink.write_events(page.events if masker is None else masker.mask_events(page.events))
            if len(page.events) < LOG_PAGE and not final:
                return

    def _raw_copy(self, sink: LogSink) -> tuple[Callable[..., Any], Callable[[Any], None]] | None:
        """The fastest copy both sides offer (see runvoy_core.ports.logs.FileRange): file ranges, which the
        sink may copy with sendfile, then raw chunks; None means parsed events."""
        logs = self.provider.logs
        if isinstance(sink, RangeSink) and isinstance(logs, FileRangeLogs):
            return logs.read_raw_ranges, sink.write_range
        if isinstance(sink, RawSink) and isinstance(logs, RawChunkLogs):
            raw_sink = sink
            return logs.read_raw_chunks, lambda chunk: raw_sink.write_raw(*chunk)
        return None

    def _observe_active(self, handle: RunHandle, state: TaskState) -> None:
        status = lifecycle.active_status(state)
        execution = handle.execution
        if not lifecycle.moves_forward(execution.status, status):
            return
        execution.status = status
        if status == Status.RUNNING and execution.started_at is None:
            execution.started_at = state.started_at or utcnow()
        handle.execution = self._write(handle, execution)
        self._event(handle.execution, status, status.value.lower())

    def _renew(self, handle: RunHandle) -> None:
        lease = handle.lease
        if lease is None or time.monotonic() < handle.next_renew:
            return
        try:
            ok = lease.renew()
        except Exception as exc:  # store outage: keep trying until the safe deadline
            log.warning("lock.renew_error", lock=lease.name, error=str(exc))
            ok = None
        if ok:
            handle.next_renew = time.monotonic() + lease.renew_interval
            return
        if ok is False and lease.handed_over:
            return  # an observer saw the task end and released the lock for it: the next look finalizes
        if ok is False:
            self._stop(
                handle, StopReason.LOCK_LOST, force=False, because="its lease was released or taken over"
            )
        elif time.monotonic() >= lease.safe_deadline():
            self._stop(
                handle, StopReason.LOCK_LOST, force=False, because="its lease could not be renewed in time"
            )
        else:
            handle.next_renew = time.monotonic() + min(1.0, lease.renew_interval)

    def _enforce(self, handle: RunHandle) -> None:
        execution = handle.execution
        now = time.monotonic()
        why = self._overdue(execution)
        if handle.cancel and execution.stop_requested is None:
            self._stop(handle, handle.cancel, force=handle.cancel == StopReason.KILL)
        elif handle.cancel == StopReason.KILL and not handle.kill_sent:
            self._force(handle)
        elif why is not None and execution.stop_requested is None:
            self._stop(handle, why, force=False)
        if (
            handle.stop_sent_at is not None
            and not handle.kill_sent
            and now - handle.stop_sent_at > execution.request.stop_grace + KILL_MARGIN
        ):
            self._force(handle)

    def _overdue(self, execution: Execution) -> StopReason | None:
        """Why a run must be stopped now: past its deadline, or never got going."""
        now = utcnow()
        if execution.deadline is not None:
            # a provider that enforces timeouts itself gets a head start, so the two never race
            margin = NATIVE_TIMEOUT_MARGIN if Capability.NATIVE_TIMEOUT in self.capabilities else 0.0
            if now >= execution.deadline + timedelta(seconds=margin):
                return StopReason.TIMEOUT
        waited = (now - execution.created_at).total_seconds()
        if execution.started_at is None and execution.task_ref is not None and waited > self.start_timeout:
            return StopReason.START_TIMEOUT
        return None

    def _stop(
        self,
        handle: RunHandle,
        why: StopReason,
        *,
        force: bool,
        detail: dict[str, Any] | None = None,
        because: str | None = None,
    ) -> None:
        """Record why the run is stopped (``because``: the same in words, kept for its final reason), then stop
        its task."""
        execution = handle.execution
        execution.stop_requested = why
        execution.stop_detail = because
        execution.status = Status.STOPPING
        handle.execution = self._write(handle, execution, check_fence=why != StopReason.LOCK_LOST)
        extra = {**(detail or {}), "because": because}
        self._event(handle.execution, Status.STOPPING, f"stop:{why}", force=force, **extra)
        assert execution.task_ref is not None
        try:
            self.provider.compute.stop(execution.task_ref, execution.request.stop_grace, force=force)
        except TransientProviderError as exc:
            log.warning("stop.transient", error=str(exc))
        handle.stop_sent_at = time.monotonic()
        handle.kill_sent = force

    def _force(self, handle: RunHandle) -> None:
        assert handle.execution.task_ref is not None
        try:
            self.provider.compute.stop(handle.execution.task_ref, 0, force=True)
            handle.kill_sent = True
            self._event(handle.execution, Status.STOPPING, "kill")
        except TransientProviderError as exc:
            log.warning("kill.transient", error=str(exc))

    # -- 6. finalize ---------------------------------------------------------------------------------------
    def finalize(self, handle: RunHandle, state: TaskState, sink: LogSink | None = None) -> Execution:
        """The watcher's end of a run: the last log lines, the final record, the lock released."""
        if sink is not None:
            self._pump_logs(handle, sink, final=True)
        try:
            return self._conclude(handle, state)
        except StaleFence:
            # a newer holder owns the lock: this watcher must not write; the record converges elsewhere
            lock = handle.execution.lock
            raise LockLost(f"lock {lock!r} was taken over; not writing the final status") from None
        finally:
            if handle.lease is not None:
                try:
                    handle.lease.release()
                except Exception as exc:
                    log.warning("lock.release_failed", error=str(exc))

    def _conclude(self, handle: RunHandle, state: TaskState, *, observed: bool = False) -> Execution:
        """Archive the logs, write the final record, clean up the task's resources, tell the plugins."""
        execution = handle.execution
        ref = execution.task_ref
        logs = self.provider.logs
        if ref is not None and isinstance(logs, ArchivingLogs):
            try:
                masker = self.log_masker(execution)
                if masker is None:
                    logs.archive(ref, execution.id)
                else:  # ArchivingLogs takes mask= for a run with secrets (decision 1901)
                    logs.archive(ref, execution.id, mask=masker.mask)  # type: ignore[call-arg]
            except Exception as exc:  # the archive is best effort; the record must still be final
                log.warning("logs.archive_failed", error=str(exc))
        if execution.stop_requested is None and state.stopped_by_request:
            # stopped by someone else (`runvoy kill` in another shell, a run superseding it): say why
            stored = self.store.get(execution.id)
            if stored is not None and stored.stop_requested is not None:
                execution.stop_requested = stored.stop_requested
        status, reason = lifecycle.final_status(execution, state)
        handle.execution = self._write(handle, self._apply_final(execution, state, status, reason))
        self._count_cost(handle.execution)
        self._event(
            handle.execution,
            handle.execution.status,
            "finished",
            exit_code=handle.execution.exit_code,
            reason=handle.execution.reason,
            observed=observed or None,
        )
        if ref is not None:
            try:
                self.provider.compute.cleanup(ref)
            except Exception as exc:
                log.warning("cleanup.failed", error=str(exc))
        self._notify_finished(handle.execution)
        return handle.execution

    def _apply_final(
        self, execution: Execution, state: TaskState, status: Status, reason: str | None
    ) -> Execution:
        execution.status = status
        execution.reason = reason
        execution.exit_code = state.exit_code
        execution.started_at = execution.started_at or state.started_at
        execution.finished_at = state.stopped_at or utcnow()
        execution.billed_start = state.billed_start or state.started_at or execution.started_at
        execution.billed_stop = state.billed_stop or state.stopped_at or execution.finished_at
        execution.cost = self._cost(execution)
        return execution

    def _cost(self, execution: Execution) -> Any:
        try:
            from runvoy_core.cost.calculator import cost_of_execution

            wanted = self.equivalent_providers
            equivalents = (wanted() if callable(wanted) else wanted) if execution.provider == "local" else ()
            return cost_of_execution(execution, equivalents_for=list(equivalents), home=self.home)
        except Exception as exc:  # a missing price must never lose the run's outcome
            log.warning("cost.failed", error=str(exc))
            return None

    def _finish_without_task(
        self, handle: RunHandle, status: Status, reason: str, *, release_lock: bool = True
    ) -> None:
        execution = handle.execution
        execution.status = status
        execution.reason = reason
        execution.error = reason
        execution.finished_at = utcnow()
        try:
            handle.execution = self._write(handle, execution, check_fence=False)
            self._count_cost(handle.execution)
            self._event(handle.execution, status, "finished", reason=reason)
        finally:
            if handle.lease is not None and release_lock:
                handle.lease.release()

    def _count_cost(self, execution: Execution) -> None:
        """Count an ended run into its store's cost rollups (decision 1401). Never fails the run: a missed
        count is re-added by ``runvoy reconcile``, and counting twice is a no-op."""
        if not isinstance(self.store, CostRollups) or not execution.status.is_terminal:
            return
        try:
            self.store.add_to_rollups(execution)
        except Exception as exc:
            log.warning("cost.rollup_failed", execution_id=execution.id, error=str(exc))

    def _notify_finished(self, execution: Execution) -> None:
        if self.hooks is None:
            return
        try:
            self.hooks.hook.runvoy_execution_finished(execution=execution.public_dict())
        except Exception as exc:
            log.warning("hook.execution_finished_failed", error=str(exc))

    # -- record writes -------------------------------------------------------------------------------------
    def _write(
        self, handle: RunHandle | None, execution: Execution, *, check_fence: bool = True
    ) -> Execution:
        """Update the record.

        The watcher holding the lock first checks that its fence is still current, so a paused watcher
        whose lock was taken over cannot write over what happens next. Others (``runvoy status`` or
        ``kill`` from another shell) may have written meanwhile: on a version conflict their changes are
        merged in, never lost, and a record someone already finalized is left as it is.
        """
        watcher = handle is not None and handle.lease is not None
        if watcher and check_fence and execution.lock and execution.fence is not None:
            from runvoy_core.locks import check_fence as _check

            _check(self.register, execution.lock, execution.fence)
        for _ in range(WRITE_ATTEMPTS):
            try:
                return self.store.update(execution)
            except VersionConflict:
                fresh = self.store.get(execution.id)
                if fresh is None:
                    raise
                if fresh.status.is_terminal:
                    return fresh
                execution = _merge(fresh, execution)
        return self.store.update(execution)

    def _event(self, execution: Execution, status: Status | None, event: str, **detail: Any) -> None:
        try:
            clean = {k: v for k, v in detail.items() if v is not None}
            self.store.append_event(execution.id, StatusChange(status=status, event=event, detail=clean))
        except Exception as exc:
            log.warning("event.write_failed", error=str(exc))

    # -- converging records that nobody watches --------------------------------------------------------------
    def refresh(
        self,
        execution: Execution,
        *,
        release_lock: bool = True,
        enforce: bool = True,
        follow: Follow | None = None,
    ) -> Execution:
        """Bring a non-terminal record in line with the provider; finalize it if its task ended."""
        if follow is not None:
            follow.waited = False
        if execution.status.is_terminal:
            return execution
        handle = RunHandle(execution=execution)
        if execution.task_ref is None:
            ref = None
            try:
                ref = self.provider.compute.find(execution.id)
            except TransientProviderError:
                return execution
            if ref is None:
                if utcnow() - execution.created_at < ORPHAN_AFTER:
                    return execution
                self._finish_without_task(handle, Status.LOST, "never started: the submitter stopped first")
                self._release_observed(handle.execution, release_lock)
                return handle.execution
            execution.task_ref = ref
            execution.status = Status.STARTING
            try:
                handle.execution = self.store.update(execution)
            except VersionConflict:
                fresh = self.store.get(execution.id)
                return fresh if fresh is not None else execution
        if follow is not None and self.shared_polling:
            handle.poll = follow.poll
            try:
                state = self._describe(handle, follow.interval)
            finally:
                follow.poll, follow.waited = handle.poll, True
        else:
            state = self._describe(handle)
        if state is None:
            return handle.execution
        if state.ended:
            stored = self.store.get(execution.id)
            if stored is not None and stored.status.is_terminal:
                return stored  # its watcher (or another reader) finalized it meanwhile: archive once
            handle.log_cursor = None
            try:
                result = self._conclude(handle, state, observed=True)
            except VersionConflict:
                fresh = self.store.get(execution.id)
                return fresh if fresh is not None else execution
            self._release_observed(result, release_lock)
            return result
        try:
            self._observe_active(handle, state)
            why = self._overdue(handle.execution) if enforce else None
            if why is not None and handle.execution.stop_requested is None:
                self._stop(handle, why, force=False)
            elif enforce and handle.execution.stop_requested is None:
                self._stop_if_lock_lost(handle)
        except (VersionConflict, StaleFence):
            fresh = self.store.get(execution.id)
            return fresh if fresh is not None else execution
        return handle.execution

    def _stop_if_lock_lost(self, handle: RunHandle) -> None:
        """A detached run has no watcher renewing its lock: whoever looks at it checks that the lock is still
        its own, and stops it if the lock was released by force or granted to someone else, so that it never
        runs alongside the next holder."""
        execution = handle.execution
        if not execution.lock or execution.fence is None:
            return
        from runvoy_core.locks import why_not_held

        lost = why_not_held(self.register, execution.lock, execution.fence, execution.lock_owner)
        if lost is not None:
            self._stop(
                handle, StopReason.LOCK_LOST, force=False, because=lost, detail={"lock": execution.lock}
            )

    def _release_observed(self, execution: Execution, release_lock: bool) -> None:
        if release_lock and execution.lock and execution.status.is_terminal:
            try:
                self.locks.release_if_holder_ended(execution.lock)
            except Exception as exc:
                log.warning("lock.release_failed", lock=execution.lock, error=str(exc))

    def request_stop(
        self,
        execution: Execution,
        *,
        force: bool,
        why: StopReason | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Execution:
        """Stop a run from outside its watcher (``runvoy kill``; ``why`` "superseded" for a newer run that
        takes its lock with --on-conflict cancel)."""
        if execution.status.is_terminal:
            return execution
        if execution.task_ref is None:
            execution = self.refresh(execution)
            if execution.status.is_terminal or execution.task_ref is None:
                return execution
        handle = RunHandle(execution=execution)
        if execution.stop_requested is None or force:
            try:
                self._stop(
                    handle,
                    why or (StopReason.KILL if force else StopReason.CANCEL),
                    force=force,
                    detail=detail,
                )
            except StaleFence:
                pass
        return handle.execution

    def follow_logs(
        self, execution: Execution, *, follow: bool, pattern: str | None = None, poll: float = 0.25
    ) -> Iterator[LogEvent]:
        """Events from the start; with ``follow`` keep reading until the run ends (and once more after)."""
        for events in self.follow_logs_pages(execution, follow=follow, pattern=pattern, poll=poll):
            yield from events

    def copy_logs(self, execution: Execution, sink: LogSink, *, follow: bool, poll: float = 0.25) -> None:
        """Everything ``follow_logs`` yields, written to ``sink`` as it is read, in the fastest form both
        sides offer (file ranges or raw chunks, see ``_raw_copy``; else pages of events): ``runvoy logs ID >
        file`` at the speed of copying a file, not of one event object per line."""
        raw = self._raw_copy(sink) if self.log_masker(execution) is None else None
        if raw is None:
            for events in self.follow_logs_pages(execution, follow=follow, poll=poll):
                sink.write_events(events)
            return
        read_raw, write_raw = raw

        def read_chunks(ref: str, cursor: str | None) -> tuple[list[Any], str | None, bool]:
            chunks, cursor = read_raw(ref, cursor)
            return chunks, cursor, bool(chunks)

        for chunks in self._follow_reads(execution, follow, poll, read_chunks):
            for chunk in chunks:
                write_raw(chunk)

    def follow_logs_pages(
        self, execution: Execution, *, follow: bool, pattern: str | None = None, poll: float = 0.25
    ) -> Iterator[list[LogEvent]]:
        """``follow_logs``, a page of events at a time (each as soon as it is read)."""

        masker = self.log_masker(execution)

        def read_page(ref: str, cursor: str | None) -> tuple[list[LogEvent], str | None, bool]:
            page = self.provider.logs.read(ref, cursor, LOG_PAGE, pattern)
            more = len(page.events) >= LOG_PAGE
            return (
                (page.events if masker is None else masker.mask_events(page.events, pattern)),
                page.cursor,
                more,
            )

        yield from self._follow_reads(execution, follow, poll, read_page)

    def _follow_reads(
        self,
        execution: Execution,
        follow: bool,
        poll: float,
        read: Callable[[str, str | None], tuple[list[Any], str | None, bool]],
    ) -> Iterator[list[Any]]:
        """Repeated ``read(ref, cursor) -> (items, cursor, more at once)`` from the start; with ``follow``
        until the run ends, and once more after it (the last lines land late on some clouds)."""
        ref = self._wait_for_ref(execution, follow, poll)
        if ref is None:
            return
        cursor: str | None = None
        ended_reads = 0
        while True:
            items, next_cursor, more = read(ref, cursor)
            if next_cursor is not None:
                cursor = next_cursor
            if items:
                yield items
            if more:
                continue
            if not follow or ended_reads:
                return
            if self._has_ended(execution):
                ended_reads += 1
                continue
            time.sleep(poll)

    def _wait_for_ref(self, execution: Execution, follow: bool, poll: float) -> str | None:
        """The task ref to read logs from; when following a run that has not started yet, wait for it
        (None: it ended without one)."""
        ref = execution.task_ref
        while ref is None and follow:
            time.sleep(poll)
            fresh = self.store.get(execution.id)
            if fresh is None or fresh.status.is_terminal:
                return None
            ref = fresh.task_ref
        return ref

    def _has_ended(self, execution: Execution) -> bool:
        fresh = self.store.get(execution.id)
        if fresh is not None and not fresh.status.is_terminal:
            fresh = self.refresh(fresh)
        return fresh is None or fresh.status.is_terminal

    def reconcile(self, *, dry_run: bool = False) -> list[dict[str, Any]]:
        """Finalize stuck records, mark orphans, stop this store's tasks that have no record (see
        runvoy_core/reconcile.py); ``dry_run`` changes nothing and says what would be done."""
        from runvoy_core.reconcile import reconcile

        return reconcile(self, dry_run=dry_run)


def _merge(stored: Execution, mine: Execution) -> Execution:
    """My view of a record written over the stored one: a stop asked for elsewhere is kept, the status
    only moves forward, and what either side learned about the task is kept."""
    merged = mine.model_copy(update={"version": stored.version})
    merged.stop_requested = mine.stop_requested or stored.stop_requested
    if mine.stop_requested is None:
        merged.stop_detail = stored.stop_detail
    if not mine.status.is_terminal and lifecycle.moves_forward(mine.status, stored.status):
        merged.status = stored.status
    merged.task_ref = mine.task_ref or stored.task_ref
    merged.started_at = mine.started_at or stored.started_at
    return merged
