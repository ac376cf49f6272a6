"""The Python API: ``Runvoy(provider=None, **config)``.

from runvoy_core import Runvoy
rv = Runvoy()                                   # the local provider, zero configuration
ex = rv.run("pytest -x", timeout="30m", lock="ci")
ex.status, ex.exit_code, ex.cost.total
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
    RunvoyError,
    UnknownProvider,
    ValidationFailed,
)
from runvoy_core.logging import request_scope
from runvoy_core.models import (
    Execution,
    ExecutionRequest,
    LogEvent,
    Status,
    StatusChange,
)
from runvoy_core.ports import LockRegister, Provider, StorePort
from runvoy_core.ports.store import ExecutionQuery
from runvoy_core.runner import Follow, LogSink, Messages, RunHandle, Runner

if TYPE_CHECKING:
    from runvoy_core.models import LockRecord
    from runvoy_core.plugins.manager import LoadedPlugins
    from runvoy_core.plugins.registry import ProviderSpec


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


class Runvoy:
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

    def __enter__(self) -> Runvoy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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


__all__ = ["Runvoy", "RunvoyError", "build_request"]
