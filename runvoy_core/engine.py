"""``LocalBackend``: runs on a provider plugin, with the runner in this process (decision 1511).

``Runvoy`` (runvoy_core.api) delegates to it unless a server is set; the server's ``TeamBackend`` wraps one.
Every method is an operation of runvoy_core.backend.Backend; the CLI's locks, cost, budget and providers
commands print what these return (decision 1512).
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runvoy_core import inputs
from runvoy_core.config import Settings, describe_validation_error, load_settings
from runvoy_core.errors import (
    AmbiguousId,
    ConfigError,
    LockLost,
    NotFound,
    UnknownProvider,
    ValidationFailed,
)
from runvoy_core.logging import request_scope
from runvoy_core.models import (
    Execution,
    ExecutionRequest,
    LogEvent,
    LogPage,
    Status,
    StatusChange,
)
from runvoy_core.ports import LockRegister, Provider, StorePort
from runvoy_core.ports.store import ExecutionQuery
from runvoy_core.runner import Follow, LogSink, Messages, RunHandle, Runner

if TYPE_CHECKING:
    from runvoy_core.locks import LockManager
    from runvoy_core.models import LockRecord
    from runvoy_core.plugins.manager import LoadedPlugins
    from runvoy_core.plugins.registry import ProviderSpec
    from runvoy_core.team.admin import TeamAdmin


def _runvoy_extras() -> frozenset[str]:
    """The extras of the installed runvoy distribution that install a provider: ``runvoy[NAME]`` requires the
    distribution ``runvoy-NAME`` (read from the metadata, so the core names no provider)."""
    import re
    from importlib import metadata

    try:
        requirements = metadata.metadata("runvoy").get_all("Requires-Dist") or ()
    except metadata.PackageNotFoundError:
        return frozenset()
    found = set()
    for requirement in requirements:
        match = re.match(r"^runvoy-([a-z0-9_-]+)\b.*extra\s*==\s*['\"]([a-z0-9_-]+)['\"]", requirement)
        if match and match.group(1) == match.group(2):
            found.add(match.group(1))
    return frozenset(found)


def build_request(command: str | list[str] | ExecutionRequest, **options: Any) -> ExecutionRequest:
    """An ExecutionRequest from keyword options; a bad value names the field and the accepted form."""
    if isinstance(command, ExecutionRequest):
        return command
    data: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    resources = dict(data.pop("resources", {}) or {})
    for key in ("cpu", "memory", "spot", "storage_gib"):
        if key in data:
            resources[key] = data.pop(key)
    if "arch" in data:
        resources["architecture"] = data.pop("arch")
    if "architecture" in data:
        resources["architecture"] = data.pop("architecture")
    if resources:
        data["resources"] = resources
    for key in ("image_digest", "image_platform_digest"):
        if key in data:
            # the image check sets it: a digest chosen by hand goes in the reference itself
            raise ValidationFailed(
                f"invalid request: {key} is set by runvoy's image check; pin an image as image='NAME@sha256:...'"
            )
    if isinstance(command, str):
        data["command"] = command
    else:
        data["argv"] = list(command)
    if not data.get("lock"):
        # lock options without a lock would be silently ignored (the CLI refuses them the same way)
        given = [key for key in ("lock_timeout", "on_conflict") if key in data]
        if given:
            raise ValidationFailed(
                f"invalid request: {', '.join(given)} needs a lock (lock=NAME); without one there is nothing to wait for or share"
            )
    try:
        return ExecutionRequest.model_validate(data)
    except ValueError as exc:
        raise ValidationFailed(f"invalid request: {describe_validation_error(exc)}") from None


def _check_number(
    name: str, value: float | int | None, low: float, high: float, *, integer: bool = False
) -> None:
    """A numeric parameter of the Python API: None, or a finite number in [low, high] (an int if ``integer``)."""
    if value is None:
        return
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if ok and not integer:
        ok = value == value and value not in (float("inf"), float("-inf"))  # NaN and infinities
    if not ok or not low <= value <= high:
        kind = "a whole number" if integer else "a number"
        raise ValidationFailed(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}")


def _check_form(name: str, form: inputs.Form, value: Any) -> None:
    """A text parameter of the Python API, in its documented form (runvoy_core.inputs)."""
    try:
        form.check(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: {exc}; expected {form.text}") from None


class LocalBackend:
    """The runner in this process, on a provider plugin: what ``Runvoy`` did before it became a facade
    (decision 1511). Implements runvoy_core.backend.Backend."""

    def __init__(
        self, provider: str | None = None, *, settings: Settings | None = None, **config: Any
    ) -> None:
        self.settings = settings or load_settings()
        self.provider_name = provider or self.settings.provider
        self._provider: Provider | None = None
        self._runner: Runner | None = None
        self._config_overrides = config
        self._plugins: LoadedPlugins | None = None
        self._wiring = threading.RLock()
        """Threads sharing this object share one provider and runner, so one poller (decision 0026)."""

    # -- wiring ------------------------------------------------------------------------------------------------
    @property
    def plugins(self) -> LoadedPlugins:
        if self._plugins is None:
            from runvoy_core.plugins.manager import get_plugins

            self._plugins = get_plugins()
        return self._plugins

    @property
    def spec(self) -> ProviderSpec:
        """The registered spec of this client's provider: its capabilities, sizes and where it comes from."""
        spec = self.plugins.registry.get(self.provider_name)
        if spec is None:
            self._create_provider(self.provider_name)  # raises the error that explains why
        assert spec is not None
        return spec

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            with self._wiring:
                if self._provider is None:
                    self._provider = self._create_provider(self.provider_name)
        return self._provider

    def _create_provider(self, name: str) -> Provider:
        spec = self.plugins.registry.get(name)
        if spec is None:
            failure = next((f for f in self.plugins.failures if f.plugin == name), None)
            if failure is not None:
                raise UnknownProvider(f"provider {name!r} failed to load: {failure.error}")
            known = ", ".join(self.plugins.registry.names())
            hint = (
                f"install it with: pip install 'runvoy[{name}]'"
                if name in _runvoy_extras()
                else f"installed providers: {known}"
            )
            raise UnknownProvider(f"unknown provider {name!r} (installed: {known})", hint=hint)
        section = {**self.settings.provider_section(name), **self._config_overrides}
        model = spec.load_config_model()
        config: Any = section
        if model is not None:
            try:
                config = model.model_validate(section)
            except ValueError as exc:
                detail = describe_validation_error(exc)
                raise ConfigError(
                    f"invalid configuration for provider {name!r}: providers.{name}.{detail}",
                    hint=f"fix the [providers.{name}] section of your config file or RUNVOY_PROVIDERS__{name.upper()}__*",
                ) from None
        factory = spec.load_factory()
        provider: Provider = factory(config, self.settings)
        return provider

    @property
    def store(self) -> StorePort:
        store = self.provider.store
        if store is None:
            from runvoy_core.providers.local.store import LocalStore

            store = LocalStore(self.settings.home)
        return store

    @property
    def register(self) -> LockRegister:
        register = self.provider.locks
        if register is None:
            from runvoy_core.providers.local.register import LocalLockRegister

            register = LocalLockRegister(self.settings.home)
        return register

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            with self._wiring:
                return self._wired_runner()
        return self._runner

    def _wired_runner(self) -> Runner:
        if self._runner is None:
            plugins = self.plugins

            def clouds() -> tuple[str, ...]:
                """What a local run would have cost on every provider that declares prices (read when a
                local run's cost is computed, not on every command)."""
                from runvoy_core.cost.source import load_price_sources

                return tuple(sorted(n for n in load_price_sources(plugins) if n != "local"))

            self._runner = Runner(
                self.provider,
                store=self.store,
                register=self.register,
                lock_lease=self.settings.lock_lease,
                poll_max=self.settings.poll_interval_max,
                start_timeout=self.settings.start_timeout,
                user=self.settings.resolved_user,
                hooks=self.plugins.hooks,
                home=self.settings.home,
                notify_url=self.settings.notify.webhook_url,
                notify_timeout=self.settings.notify.webhook_timeout,
                equivalent_providers=clouds,
                capabilities=self.spec.capabilities,
            )
        return self._runner

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()

    def team(self) -> TeamAdmin:
        from runvoy_core.errors import CapabilityMissing
        from runvoy_core.ports.optional import DocumentStore
        from runvoy_core.team.admin import LocalTeamAdmin

        store = self.store
        if not isinstance(store, DocumentStore):
            raise CapabilityMissing(
                f"provider {self.provider_name!r} has no document store, where a runvoy server keeps its users, "
                "keys and policies",
                hint="use the provider the server runs on (--provider), or a runvoy server (runvoy login)",
            )
        return LocalTeamAdmin(store)

    # -- running -------------------------------------------------------------------------------------------------
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
    ) -> Execution:
        """Run and wait; returns the finished Execution. Logs go to ``log_sink`` as they arrive.
        ``image_check=False`` skips asking the image's registry (the ``[images]`` policy still applies)."""
        request = build_request(command, **self._default_size(options))
        request = self._image_checked(request, image_check)
        with request_scope():
            handle = self.runner.start(request, on_message=on_message, on_lock_wait=on_lock_wait)
            if on_start is not None:
                on_start(handle)
            try:
                return self.runner.watch(handle, log_sink)
            except LockLost:
                # this watcher lost its lock and may no longer write; the record converges from what the
                # provider says about the task (stopped, with the reason recorded before the stop)
                return self.status(handle.execution.id)

    def submit(
        self,
        command: str | list[str] | ExecutionRequest,
        *,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        image_check: bool = True,
        **options: Any,
    ) -> Execution:
        """Start and return at once (a detached run); ``status``/``wait`` converge it later."""
        request = build_request(command, **self._default_size(options))
        request = self._image_checked(request, image_check)
        with request_scope():
            handle = self.runner.start(request, on_message=on_message, on_lock_wait=on_lock_wait)
        return handle.execution

    def _image_checked(self, request: ExecutionRequest, image_check: bool) -> ExecutionRequest:
        """The request with its image checked and its digest recorded (runvoy_core.images.check), before the
        lock, the record and the start; unchanged without an image."""
        _check_form("image_check", inputs.SWITCH, image_check)
        from runvoy_core.ports.optional import DefaultImage

        if not request.image and isinstance(self.provider, DefaultImage):
            # a cloud run always runs an image: the provider's default is checked and pinned like any other
            request = request.model_copy(update={"image": self.provider.default_image()})
        if not request.image:
            return request
        from runvoy_core.ports import Capability

        if Capability.IMAGE not in self.spec.capabilities:
            return request  # the runner refuses it, naming the capability
        # what the provider refuses anyway (a local run without a container runtime, an arch it lacks) is
        # refused before any registry is asked
        self.provider.compute.validate(request)
        from runvoy_core.images.check import check_request

        return check_request(
            request,
            images=self.settings.images,
            home=self.settings.home,
            provider=self.provider,
            provider_name=self.provider_name,
            resolve=image_check,
            on_this_machine=self.provider_name == "local",
        )

    def _default_size(self, options: dict[str, Any]) -> dict[str, Any]:
        """The settings' ``cpu``/``memory`` for a run that names no size of its own (``runvoy init`` writes them).
        They are a pair: a run naming either one gets neither (``--cpu 2`` alone is rounded by the provider,
        not paired with a default memory too small for it)."""
        if "resources" in options or options.get("cpu") is not None or options.get("memory") is not None:
            return options
        given = dict(options)
        if self.settings.cpu is not None:
            given["cpu"] = self.settings.cpu
        if self.settings.memory is not None:
            given["memory"] = self.settings.memory
        return given

    # -- reading -------------------------------------------------------------------------------------------------
    def resolve_id(self, id_or_prefix: str) -> str:
        prefix = id_or_prefix.strip().lower()
        if not prefix:
            raise ValidationFailed("an execution id is required")
        matches = list(self.store.resolve_prefix(prefix, limit=2))
        if not matches:
            raise NotFound(
                f"no execution {id_or_prefix!r} on provider {self.provider_name!r}",
                hint="run: runvoy list"
                + ("" if self.provider_name == "local" else f" --provider {self.provider_name}"),
            )
        if len(matches) > 1:
            raise AmbiguousId(f"{id_or_prefix!r} matches more than one execution ({', '.join(matches)}, ...)")
        return matches[0]

    def get(self, execution_id: str) -> Execution:
        full = self.resolve_id(execution_id)
        record = self.store.get(full)
        if record is None:
            raise NotFound(f"no execution {execution_id!r}")
        return record

    def status(self, execution_id: str) -> Execution:
        """The record, converged with the provider (a finished task is finalized here)."""
        return self.runner.refresh(self.get(execution_id))

    def events(self, execution_id: str) -> builtins.list[StatusChange]:
        return list(self.store.events(self.resolve_id(execution_id)))

    def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.2,
        poll_max: float | None = None,
    ) -> Execution:
        """Block until the execution ends (or ``timeout`` seconds pass: then the current record)."""
        _check_number("timeout", timeout, 0, 30 * 86400)
        _check_number("poll", poll, 0.001, 300)
        _check_number("poll_max", poll_max, 0.001, 300)
        record = self.get(execution_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll
        cap = poll_max or self.runner.poll_max
        # many waits in one process (threads) share the provider's poller: see runvoy_core/polling.py
        follow = Follow()
        try:
            while True:
                record = self.runner.refresh(record, follow=follow)
                if record.status.is_terminal:
                    return record
                if deadline is not None and time.monotonic() >= deadline:
                    return record
                if not follow.waited:
                    time.sleep(interval)
                follow.interval = interval if deadline is None else min(interval, deadline - time.monotonic())
                interval = min(interval * 1.5, cap)
                fresh = self.store.get(record.id)
                record = fresh if fresh is not None else record
        finally:
            follow.close()

    def logs(
        self,
        execution_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        pattern: str | None = None,
    ) -> Iterator[LogEvent]:
        _check_number("tail", tail, 0, 1_000_000, integer=True)
        if pattern is not None:
            _check_form("pattern", inputs.GREP, pattern)
        record = self.get(execution_id)
        events = self.runner.follow_logs(record, follow=follow and tail is None, pattern=pattern)
        if tail is None:
            yield from events
            return
        from collections import deque

        last: deque[LogEvent] = deque(events, maxlen=max(tail, 0))
        yield from last
        if follow:
            # continue after the tail: re-read from the start but skip what was printed (cursor-less readers)
            seen = len(list(self.runner.follow_logs(record, follow=False, pattern=pattern)))
            for i, event in enumerate(self.runner.follow_logs(record, follow=True, pattern=pattern)):
                if i >= seen:
                    yield event

    def copy_logs(self, execution_id: str, sink: LogSink, *, follow: bool = False) -> None:
        """Write an execution's whole output to ``sink`` (``write_events(events)``; optionally
        ``write_raw(stream, data)`` and ``write_range(FileRange)``, which the fastest path uses), following
        the run until it ends with ``follow``. For copying logs out in bulk; ``logs`` gives events."""
        self.runner.copy_logs(self.get(execution_id), sink, follow=follow)

    def log_page(self, execution_id: str, *, cursor: str | None = None, limit: int = 1000) -> LogPage:
        """One page of an execution's stored logs from ``cursor`` (None: the start); the page's cursor
        continues it, None once the run has ended and nothing is left to read."""
        _check_number("limit", limit, 1, 10_000, integer=True)
        after = _provider_cursor(cursor)
        record = self.get(execution_id)
        ref = record.task_ref
        if ref is None and not record.status.is_terminal:
            record = self.status(record.id)
            ref = record.task_ref
        if ref is None:
            # not started yet: nothing to read, the same cursor continues it (none when it never will start)
            return LogPage(events=[], cursor=None if record.status.is_terminal else _page_cursor(after))
        page = self.runner.read_logs(record, ref, after, limit)
        after = page.cursor or after
        if page.events:
            return LogPage(events=page.events, cursor=_page_cursor(after))
        if record.status.is_terminal or self.status(record.id).status.is_terminal:
            # ended: one more read, as the runner's own follow does (the last lines land late on some clouds)
            page = self.runner.read_logs(record, ref, after, limit)
            if not page.events:
                return LogPage(events=[], cursor=None)
            after = page.cursor or after
        return LogPage(events=page.events, cursor=_page_cursor(after))

    def kill(self, execution_id: str, *, force: bool = False, wait: float | None = None) -> Execution:
        """Stop a run: graceful stop (SIGTERM) then kill after the grace period; ``force`` kills at once.
        With ``wait`` (seconds), block until it has ended."""
        _check_number("wait", wait, 0, 30 * 86400)
        record = self.runner.request_stop(self.get(execution_id), force=force)
        if wait:
            record = self.wait(record.id, timeout=wait)
        return record

    def list(
        self,
        *,
        statuses: set[Status] | None = None,
        limit: int = 50,
        since: datetime | None = None,
        labels: dict[str, str] | None = None,
        refresh: bool = True,
    ) -> list[Execution]:
        _check_number("limit", limit, 1, 10_000, integer=True)
        for key, value in (labels or {}).items():
            _check_form("labels", inputs.LABEL_KEY, key)
            _check_form("labels", inputs.LABEL_VALUE, value)
        query = ExecutionQuery(
            statuses=frozenset(statuses) if statuses else None, limit=limit, since=since, labels=labels or {}
        )
        page = self.store.list(query)
        records = page.executions
        if refresh:
            records = [self.runner.refresh(r) if not r.status.is_terminal else r for r in records]
            if statuses:
                records = [r for r in records if r.status in statuses]
        return records

    def reconcile(self, *, dry_run: bool = False) -> builtins.list[dict[str, Any]]:
        return self.runner.reconcile(dry_run=dry_run)

    # -- playbooks -----------------------------------------------------------------------------------------------
    def _playbook(
        self, text: str, name: str | None, source: str | None, options: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The playbook's script and ``run``'s options: the given ones over the playbook's."""
        from runvoy_core.playbook import MAX_PLAYBOOK_BYTES, merge_options, parse_playbook

        if not isinstance(text, str):
            raise ValidationFailed("a playbook is given as its YAML text")
        if len(text.encode("utf-8", "surrogatepass")) > MAX_PLAYBOOK_BYTES:
            raise ValidationFailed(
                f"playbook {source or '<playbook>'} is larger than {MAX_PLAYBOOK_BYTES // 1024} KiB",
                hint="a playbook lists steps; keep large scripts in files the steps run",
            )
        for what, given in (("name", name), ("source", source)):
            if given is not None:
                _check_form(what, inputs.GREP, given)
        book = parse_playbook(text, source=source or "<playbook>", default_name=name)
        merged = merge_options(book.request_options(), options)
        check_lock_options(merged)
        return book.script(), {k: v for k, v in merged.items() if v is not None}

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
        """Run a playbook given as YAML text and wait (see runvoy_core.backend.Backend.run_playbook)."""
        script, merged = self._playbook(text, name, source, options)
        return self.run(
            script,
            log_sink=log_sink,
            on_message=on_message,
            on_lock_wait=on_lock_wait,
            on_start=on_start,
            **merged,
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
        """Start a playbook given as YAML text and return at once."""
        script, merged = self._playbook(text, name, source, options)
        return self.submit(script, on_message=on_message, on_lock_wait=on_lock_wait, **merged)

    # -- locks -----------------------------------------------------------------------------------------------------
    @property
    def _locks(self) -> LockManager:
        """The lock manager over this provider's register, able to ask whether a holder still runs."""
        manager: LockManager = self.runner.locks
        return manager

    def list_locks(self) -> builtins.list[dict[str, Any]]:
        return [lock_json(record, version) for record, version in self._locks.list()]

    def _lock(self, manager: LockManager, name: str) -> tuple[LockRecord, str]:
        _check_form("name", inputs.LOCK_REF, name)
        found = manager.get(name)
        if found is None:
            raise NotFound(f"no lock named {name!r}", hint=_missing_lock_hint(manager, name))
        return found

    def lock_status(self, name: str) -> dict[str, Any]:
        from runvoy_core.lock_queue import waiting

        manager = self._locks
        record, version = self._lock(manager, name)
        data = lock_json(record, version, _holder_status(manager, record))
        data["queue"] = [
            {"ticket": number, "execution_id": h.execution_id, "user": h.user, "host": h.host}
            for number, h in waiting(manager.register, name)
        ]
        return data

    def release_lock(self, name: str, *, force: bool = False, version: str | None = None) -> dict[str, Any]:
        from runvoy_core.errors import LockHeld, VersionConflict
        from runvoy_core.locks import describe_holder

        _check_form("force", inputs.SWITCH, force)
        if version is not None:
            _check_form("version", inputs.GREP, version)
        manager = self._locks
        record, current = self._lock(manager, name)

        def done(released: bool, text: str) -> dict[str, Any]:
            return {"name": name, "released": released, "fence": record.fence, "message": text}

        if record.state.value != "held":
            return done(False, f"lock {name!r} is not held (fence {record.fence})")
        if not force:
            if manager.release_if_holder_ended(name):
                return done(True, f"released lock {name!r}: its holder execution has ended")
            raise LockHeld(
                f"lock {name!r} is held by {describe_holder(record)}, which is not known to have ended",
                hint=self._release_hint(name, record),
                lock=name,
            )
        shown = version or current
        if not manager.force_release(name, shown, by=_operator(self.settings)):
            raise VersionConflict(
                f"lock {name!r} changed since it was shown (version {shown}); nothing was released",
                hint=f"look again with: runvoy locks status {name}",
            )
        return done(True, f"force-released lock {name!r} (was fence {record.fence})")

    def _release_hint(self, name: str, record: LockRecord) -> str:
        """`runvoy kill` only where there is a run to kill: a holder whose submitter died before recording its
        run has none (waiters take such a lock over within seconds)."""
        take_away = f"runvoy locks release {name} --force"
        execution_id = record.holder.execution_id
        if execution_id and self.store.get(execution_id) is not None:
            return f"stop it with: runvoy kill {execution_id}, or take the lock away with: {take_away}"
        return (
            f"its run {execution_id or '(none)'} was never recorded (its submitter stopped right after taking "
            f"the lock); the next run that waits for the lock takes it over, or take it away now with: {take_away}"
        )

    # -- cost ------------------------------------------------------------------------------------------------------
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
        from decimal import Decimal

        from runvoy_core.cost.catalog import load_catalog
        from runvoy_core.cost.pricing import PricingError, price_run

        cpu_value = _parsed("cpu", inputs.CPU, cpu)
        memory_mib = _parsed("memory", inputs.MEMORY, memory)
        seconds = Decimal(str(_parsed("duration", inputs.ESTIMATE_DURATION, duration)))
        if region is not None:
            _check_form("region", inputs.REGION, region)
        _check_form("spot", inputs.SWITCH, spot)
        _check_number("storage_gib", storage_gib, 1, 200, integer=True)
        _check_number("runs", runs, 1, 1_000_000 * 3660, integer=True)
        architecture = ARCH_ALIASES.get(arch.lower()) if isinstance(arch, str) else None
        if architecture is None:
            raise ValidationFailed(
                f"arch {arch!r} must be x86_64 or arm64 (or {', '.join(sorted(ARCH_ALIASES))})"
            )
        catalog = load_catalog(self.settings.home)
        warnings = [*catalog.warnings, *filter(None, [catalog.staleness_warning()])]

        priced = priced_providers()
        if provider != "all":
            one_of("--provider", provider, [*priced, "local"])
        providers = priced if provider == "all" else [provider]
        regions: dict[str, str | None] = {p: None for p in providers}
        if region:
            owners = [p for p in providers if region in catalog.regions(p)]
            if provider != "all" or not owners:
                for p in providers:
                    regions[p] = region
            else:
                for p in owners:
                    regions[p] = region

        results: builtins.list[dict[str, Any]] = []
        for name in providers:
            try:
                breakdown = price_run(
                    name,
                    cpu_value,
                    memory_mib,
                    seconds,
                    region=regions[name],
                    architecture=architecture,
                    spot=spot,
                    storage_gib=storage_gib,
                    catalog=catalog,
                )
            except PricingError as exc:
                if len(providers) == 1:
                    raise ValidationFailed(exc.message, hint=exc.hint, valid_sizes=exc.valid_sizes) from None
                results.append({"provider": name, "region": regions[name], "error": exc.message})
                continue
            per_run = breakdown.total
            results.append(
                {
                    "provider": name,
                    "region": breakdown.region,
                    "size": breakdown.size,
                    "cpu": str(breakdown.cpu),
                    "memory_mib": breakdown.memory_mib,
                    "architecture": breakdown.architecture,
                    "capacity": breakdown.capacity,
                    "billed_seconds": str(breakdown.billed_seconds),
                    "vcpu": str(breakdown.amount("vcpu") * runs),
                    "memory": str(breakdown.amount("memory") * runs),
                    "storage": str(breakdown.amount("storage") * runs),
                    "per_run": str(per_run),
                    "runs": runs,
                    "total": str(per_run * runs),
                    "currency": breakdown.currency,
                    "notes": breakdown.notes,
                    "_sort": per_run,
                }
            )
        results.sort(key=lambda r: (r.get("_sort") is None, r.get("_sort") or Decimal(0), r["provider"]))
        for row in results:
            row.pop("_sort", None)
        return {
            "request": {
                "cpu": str(cpu_value),
                "memory_mib": memory_mib,
                "duration_seconds": str(seconds),
                "architecture": architecture,
                "spot": spot,
                "storage_gib": storage_gib,
                "runs": runs,
            },
            "catalog": {
                "version": catalog.version,
                "origin": catalog.origin,
                "retrieved_date": catalog.retrieved_date,
                "age_days": catalog.age_days,
            },
            "estimates": results,
            "warnings": warnings,
        }

    def cost_report(
        self, *, since: float = 7 * 86400, by: str = "provider", provider: str | None = None
    ) -> dict[str, Any]:
        from datetime import timedelta

        from runvoy_core.cost.budgets import open_local_store
        from runvoy_core.cost.report import cost_report
        from runvoy_core.errors import RunvoyError
        from runvoy_core.models import utcnow

        _check_number("since", since, 1, 3650 * 86400)
        if by not in REPORT_GROUPS:
            raise ValidationFailed(f"by {by!r} must be one of: {', '.join(REPORT_GROUPS)}")
        if provider is not None:
            _check_form("provider", inputs.PROVIDER, provider)
        start = utcnow() - timedelta(seconds=since)
        warnings: builtins.list[str] = []
        # local records always; a cloud provider keeps its own records in its own store (DynamoDB, GCS, Tables)
        stores = [open_local_store(self.settings.home)]
        cloud = self.provider_name
        if cloud != "local":
            try:
                stores.append(self.store)
            except RunvoyError as exc:
                warnings.append(f"{cloud} records not included: {exc.message}")
        try:
            report = cost_report(stores, start, by, provider=provider)
        except RunvoyError as exc:
            warnings.append(f"{cloud} records not included: {exc.message}")
            report = cost_report(stores[:1], start, by, provider=provider)
        return {**report.as_dict(), "warnings": warnings}

    # -- budgets ---------------------------------------------------------------------------------------------------
    def _budgets(self) -> Any:
        from runvoy_core.cost.budgets import BudgetStore

        return BudgetStore(self.settings.home)

    def list_budgets(self) -> builtins.list[dict[str, Any]]:
        from runvoy_core.cost.budgets import budget_status, open_local_store

        store = open_local_store(self.settings.home)
        return [budget_status(b, store).as_dict() for b in self._budgets().all()]

    def show_budget(self, name: str) -> dict[str, Any]:
        from runvoy_core.cost.budgets import budget_status, open_local_store

        _check_form("name", inputs.BUDGET_NAME, name)
        budgets = self._budgets()
        status = budget_status(budgets.get(name), open_local_store(self.settings.home))
        return {**status.as_dict(), "alerted": budgets.alerted(name, status.period_start)}

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
        from decimal import Decimal, InvalidOperation

        from runvoy_core.cost.budgets import Budget, BudgetScope, parse_alert_at

        _check_form("name", inputs.BUDGET_NAME, name)
        _check_form("enforce", inputs.SWITCH, enforce)
        for given, form in (
            (amount, inputs.AMOUNT),
            (alert_at, inputs.ALERT_AT),
            (currency, inputs.CURRENCY),
        ):
            _check_form(form.name, form, given)
        for scope in scopes or ():
            _check_form("scope", inputs.SCOPE, scope)
        try:
            value = Decimal(amount)
        except InvalidOperation:
            raise ValidationFailed(
                f"--amount {amount!r} is not a number", hint="for example: --amount 50"
            ) from None
        budgets = self._budgets()
        try:
            created_at = budgets.get(name).created_at
        except NotFound:
            created_at = None
        try:
            budget = Budget.model_validate(
                {
                    "name": name,
                    "amount": value,
                    "currency": currency.upper(),
                    "period": period,
                    "scope": BudgetScope.parse(scopes or ()).model_dump(mode="json"),
                    "alert_at": parse_alert_at(alert_at),
                    "enforce": enforce,
                    **({"created_at": created_at} if created_at else {}),
                }
            )
        except ValueError as exc:
            raise ValidationFailed(f"invalid budget: {describe_validation_error(exc)}") from None
        budgets.put(budget)
        return {"budget": budget.model_dump(mode="json"), "created": created_at is None}

    def remove_budget(self, name: str) -> None:
        _check_form("name", inputs.BUDGET_NAME, name)
        self._budgets().remove(name)

    # -- providers -------------------------------------------------------------------------------------------------
    def list_providers(self) -> dict[str, Any]:
        return describe_providers(self.plugins, home=self.settings.home, default=self.settings.provider)


REPORT_GROUPS = ("provider", "user", "label", "lock", "day")
ARCH_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x86": "x86_64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "arm": "arm64",
}


def check_lock_options(options: dict[str, Any]) -> None:
    """--on-conflict, --lock-timeout and --lock-slots mean nothing without a lock: refuse rather than ignore."""
    if options.get("lock") is not None:
        return
    given = [
        f"--{k.replace('_', '-')}" for k in ("on_conflict", "lock_timeout", "lock_slots") if options.get(k)
    ]
    if given:
        raise ValidationFailed(
            f"{', '.join(given)} needs --lock NAME (without a lock there is nothing to wait for or share)",
            hint=f"add --lock NAME, or drop {', '.join(given)}",
        )


CURSOR_MARK = "@"
"""Starts every cursor ``log_page`` returns: a provider's own cursor is None at the start of a run's logs,
which a page's cursor cannot be (None there means nothing is left)."""


def _page_cursor(provider_cursor: str | None) -> str:
    return CURSOR_MARK + (provider_cursor or "")


def _provider_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    if (
        not isinstance(cursor, str)
        or not cursor.startswith(CURSOR_MARK)
        or len(cursor) > 4096
        or not cursor.isascii()
        or not cursor.isprintable()
    ):
        raise ValidationFailed(
            "cursor: not a cursor from a page of logs", hint="pass back the cursor of the previous page"
        )
    return cursor[len(CURSOR_MARK) :] or None


def _parsed(name: str, form: inputs.Form, value: Any) -> Any:
    try:
        return form.parse(value)
    except ValueError as exc:
        raise ValidationFailed(f"{name}: {exc}; expected {form.text}") from None


def priced_providers(*, refreshable: bool = False) -> builtins.list[str]:
    """The installed providers that declare prices (their ProviderSpec.pricing): the core names none."""
    from runvoy_core.cost.source import load_price_sources

    sources = load_price_sources()
    return sorted(
        name
        for name, source in sources.items()
        if name != "local" and (source.parse is not None if refreshable else source.prices is not None)
    )


def one_of(option: str, value: str, known: builtins.list[str]) -> None:
    if value not in known:
        from runvoy_core.errors import UsageError

        raise UsageError(
            f"{option} {value!r}: no installed provider of that name declares prices",
            hint=f"choose one of: {', '.join(known)}",
        )


def _lock_age(record: LockRecord) -> float | None:
    from datetime import UTC

    # display only: acquired_at comes from the holder's machine; nothing is decided on it
    acquired = record.holder.acquired_at
    return None if acquired is None else max(0.0, (datetime.now(UTC) - acquired).total_seconds())


def lock_json(record: LockRecord, version: str, holder_status: str | None = None) -> dict[str, Any]:
    """A lock as the Backend gives it: its record as JSON, its version, age and lease in seconds."""
    data = record.model_dump(mode="json")
    data["version"] = version
    data["age_seconds"] = _lock_age(record)
    data["lease_seconds"] = record.lease_ms / 1000
    if holder_status is not None:
        data["holder_status"] = holder_status
    return data


def _holder_status(manager: LockManager, record: LockRecord) -> str:
    if record.state.value != "held" or manager.holder_status is None:
        return "-"
    try:
        return str(manager.holder_status(record.holder))
    except Exception:  # asking the provider failed: say so rather than fail the whole command
        return "unknown"


def _missing_lock_hint(manager: LockManager, name: str) -> str:
    """Point a lock with slots (NAME#1..NAME#N) out to someone who asked for NAME."""
    from runvoy_core.locks import SLOT_SEPARATOR

    slots = [record.name for record, _ in manager.list() if record.name.startswith(name + SLOT_SEPARATOR)]
    if slots:
        return f"{name!r} has slots: {', '.join(slots)} (for example: runvoy locks status {slots[0]})"
    return "run: runvoy locks list"


def _operator(settings: Settings) -> str:
    """Who acts, for a lock's audit: the caller of a server's request, else this machine's user."""
    import socket

    from runvoy_core.team.context import current_caller

    caller = current_caller()
    return f"{caller.name if caller else settings.resolved_user}@{socket.gethostname()}"


def describe_providers(plugins: LoadedPlugins, *, home: Any, default: str | None) -> dict[str, Any]:
    """The installed providers, failed plugins and the price catalog (``Backend.list_providers``); without
    settings (a broken config) ``home`` and ``default`` are None."""
    providers: builtins.list[dict[str, Any]] = [
        {
            "name": spec.name,
            "default": spec.name == default,
            "distribution": spec.distribution,
            "version": spec.version,
            "plugin": spec.plugin,
            "capabilities": sorted(spec.capabilities),
            "description": spec.description,
            "install_extra": spec.install_extra,
        }
        for spec in plugins.registry.specs()
    ]
    failures = [
        {"plugin": f.plugin, "distribution": f.distribution, "error": f.error} for f in plugins.failures
    ]
    warnings: builtins.list[str] = []
    catalog: dict[str, Any] | None = None
    try:
        from runvoy_core.cost import catalog_info
    except ImportError:
        pass
    else:
        try:
            catalog = catalog_info(home)
        except Exception as exc:  # a damaged catalog is reported, the provider list still given
            warnings.append(f"price catalog unavailable: {exc}")
    return {
        "providers": providers,
        "failures": failures,
        "skipped": list(plugins.skipped),
        "notices": list(plugins.notices),
        "prices": catalog,
        "warnings": warnings,
    }
