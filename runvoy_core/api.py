"""The Python API: ``Runvoy(provider=None, *, server=None, token=None, **config)``.

from runvoy_core import Runvoy
rv = Runvoy()                                   # the local provider, zero configuration
ex = rv.run("pytest -x", timeout="30m", lock="ci")
ex.status, ex.exit_code, ex.cost.total

``Runvoy`` is a facade (decision 1511): each method is one call to a backend (runvoy_core.backend.Backend).
Without a server that is a ``LocalBackend`` (runvoy_core.engine): the runner in this process on a provider
plugin. With one (``server=URL``, the config key ``server``, RUNVOY_SERVER) it is the backend a plugin serves
for the URL's scheme through the ``runvoy_backends`` hook, which sends each call to that server.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runvoy_core import inputs
from runvoy_core.config import Settings, load_settings
from runvoy_core.engine import LocalBackend, build_request
from runvoy_core.errors import ConfigError, RunvoyError

if TYPE_CHECKING:
    from runvoy_core.backend import Backend, BackendFactory
    from runvoy_core.models import (
        Execution,
        ExecutionRequest,
        LockRecord,
        LogEvent,
        LogPage,
        Status,
        StatusChange,
    )
    from runvoy_core.plugins.manager import LoadedPlugins
    from runvoy_core.plugins.registry import ProviderSpec
    from runvoy_core.ports import LockRegister, Provider, StorePort
    from runvoy_core.runner import LogSink, Messages, RunHandle, Runner
    from runvoy_core.team.admin import TeamAdmin


class Runvoy:
    """Runs commands on a provider (``provider``, default: the config's, else ``local``), or through the runvoy
    server at ``server`` with the API key ``token`` (default: RUNVOY_TOKEN or the file ``runvoy login`` wrote).
    ``config`` overrides keys of the provider's config section (``[providers.NAME]``)."""

    def __init__(
        self,
        provider: str | None = None,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: Settings | None = None,
        **config: Any,
    ) -> None:
        self.settings = settings or load_settings()
        if server is not None:
            try:
                server = str(inputs.SERVER_URL.parse(server))
            except ValueError as exc:
                raise ConfigError(f"server: {exc}", hint=f"expected {inputs.SERVER_URL.text}") from None
        self.server: str | None = server or self.settings.server
        """The URL of the server this client works through; None for a client on a provider of its own."""
        self._backend: Backend
        if self.server is None:
            self._backend = LocalBackend(provider, settings=self.settings, **config)
        else:
            factory = _backend_factory(self.server)
            self._backend = factory(
                self.server, token=token, settings=self.settings, provider=provider, config=dict(config)
            )

    @classmethod
    def local(cls, provider: str | None = None, *, settings: Settings | None = None, **config: Any) -> Runvoy:
        """A client on a provider of this process even when a server is configured (``runvoy setup`` acts on
        this machine's provider, not through a server)."""
        client = cls.__new__(cls)
        client.settings = settings or load_settings()
        client.server = None
        client._backend = LocalBackend(provider, settings=client.settings, **config)
        return client

    @property
    def backend(self) -> Backend:
        """What every method delegates to: a ``LocalBackend``, or a server's client."""
        return self._backend

    def team(self) -> TeamAdmin:
        """Users, keys, policies and the audit log (``runvoy users|keys|policies|audit``): through the server
        when one is configured, else on the provider's document store."""
        return self._backend.team()

    @property
    def provider_name(self) -> str:
        return self._backend.provider_name

    # -- in this process only ------------------------------------------------------------------------------------
    def _local(self, what: str) -> LocalBackend:
        if isinstance(self._backend, LocalBackend):
            return self._backend
        raise RunvoyError(
            f"Runvoy.{what} is in-process only, and this client works through the runvoy server at {self.server}",
            hint="use Runvoy's methods (run, list, locks...), or Runvoy.local() for a provider of this process",
        )

    @property
    def plugins(self) -> LoadedPlugins:
        return self._local("plugins").plugins

    @property
    def _plugins(self) -> LoadedPlugins | None:
        return self._local("plugins")._plugins

    @_plugins.setter
    def _plugins(self, value: LoadedPlugins | None) -> None:
        # a test (or an embedding program) hands its own loaded plugins to this client's runner
        self._local("plugins")._plugins = value

    @property
    def spec(self) -> ProviderSpec:
        """The registered spec of this client's provider: its capabilities, sizes and where it comes from."""
        return self._local("spec").spec

    @property
    def provider(self) -> Provider:
        return self._local("provider").provider

    @property
    def store(self) -> StorePort:
        return self._local("store").store

    @property
    def register(self) -> LockRegister:
        return self._local("register").register

    @property
    def runner(self) -> Runner:
        return self._local("runner").runner

    def close(self) -> None:
        self._backend.close()

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
        return self._backend.run(
            command,
            log_sink=log_sink,
            on_message=on_message,
            on_lock_wait=on_lock_wait,
            on_start=on_start,
            image_check=image_check,
            **options,
        )

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
        return self._backend.submit(
            command, on_message=on_message, on_lock_wait=on_lock_wait, image_check=image_check, **options
        )

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
        """Run a playbook given as its YAML text (docs/playbooks.md) and wait. ``name`` names a playbook
        whose text has none, ``source`` is how errors name it; ``options`` (``run``'s) win over the file's."""
        return self._backend.run_playbook(
            text,
            name=name,
            source=source,
            log_sink=log_sink,
            on_message=on_message,
            on_lock_wait=on_lock_wait,
            on_start=on_start,
            **options,
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
        """Start a playbook given as its YAML text and return at once."""
        return self._backend.submit_playbook(
            text, name=name, source=source, on_message=on_message, on_lock_wait=on_lock_wait, **options
        )

    # -- reading -------------------------------------------------------------------------------------------------
    def resolve_id(self, id_or_prefix: str) -> str:
        """The full id of the one execution whose id starts with ``id_or_prefix``."""
        return self._backend.resolve_id(id_or_prefix)

    def get(self, execution_id: str) -> Execution:
        """The stored record, as it is (``status`` converges it with the provider first)."""
        return self._backend.get(execution_id)

    def status(self, execution_id: str) -> Execution:
        """The record, converged with the provider (a finished task is finalized here)."""
        return self._backend.status(execution_id)

    def events(self, execution_id: str) -> builtins.list[StatusChange]:
        """The execution's status history, oldest first."""
        return self._backend.events(execution_id)

    def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.2,
        poll_max: float | None = None,
    ) -> Execution:
        """Block until the execution ends (or ``timeout`` seconds pass: then the current record)."""
        return self._backend.wait(execution_id, timeout=timeout, poll=poll, poll_max=poll_max)

    def logs(
        self,
        execution_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        pattern: str | None = None,
    ) -> Iterator[LogEvent]:
        return self._backend.logs(execution_id, follow=follow, tail=tail, pattern=pattern)

    def log_page(self, execution_id: str, *, cursor: str | None = None, limit: int = 1000) -> LogPage:
        """One page of an execution's stored logs from ``cursor`` (None: the start); the page's cursor
        continues it (None when the run has ended and nothing is left)."""
        return self._backend.log_page(execution_id, cursor=cursor, limit=limit)

    def copy_logs(self, execution_id: str, sink: LogSink, *, follow: bool = False) -> None:
        """Write an execution's whole output to ``sink`` (``write_events(events)``; optionally
        ``write_raw(stream, data)`` and ``write_range(FileRange)``, which the fastest path uses), following
        the run until it ends with ``follow``. For copying logs out in bulk; ``logs`` gives events."""
        self._backend.copy_logs(execution_id, sink, follow=follow)

    def kill(self, execution_id: str, *, force: bool = False, wait: float | None = None) -> Execution:
        """Stop a run: graceful stop (SIGTERM) then kill after the grace period; ``force`` kills at once.
        With ``wait`` (seconds), block until it has ended."""
        return self._backend.kill(execution_id, force=force, wait=wait)

    def list(
        self,
        *,
        statuses: set[Status] | None = None,
        limit: int = 50,
        since: datetime | None = None,
        labels: dict[str, str] | None = None,
        refresh: bool = True,
    ) -> builtins.list[Execution]:
        """Executions, newest first, filtered by status, creation time and labels."""
        return self._backend.list(statuses=statuses, limit=limit, since=since, labels=labels, refresh=refresh)

    def reconcile(self, *, dry_run: bool = False) -> builtins.list[dict[str, Any]]:
        """Repair records and tasks that disagree; ``dry_run`` only says what would be done."""
        return self._backend.reconcile(dry_run=dry_run)

    # -- locks ---------------------------------------------------------------------------------------------------
    def list_locks(self) -> builtins.list[dict[str, Any]]:
        """Every lock: its record as JSON with ``version``, ``age_seconds`` and ``lease_seconds``."""
        return self._backend.list_locks()

    def lock_status(self, name: str) -> dict[str, Any]:
        """One lock as ``list_locks`` gives it, with ``holder_status`` and the ``queue`` waiting for it."""
        return self._backend.lock_status(name)

    def release_lock(self, name: str, *, force: bool = False, version: str | None = None) -> dict[str, Any]:
        """Release a lock whose holder has ended; with ``force`` whoever holds it (a compare-and-swap on
        ``version`` when given)."""
        return self._backend.release_lock(name, force=force, version=version)

    # -- cost and budgets ----------------------------------------------------------------------------------------
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
        """What ``runs`` runs of this size would cost on each provider that declares prices, cheapest first."""
        return self._backend.estimate_cost(
            cpu=cpu,
            memory=memory,
            duration=duration,
            provider=provider,
            region=region,
            arch=arch,
            spot=spot,
            storage_gib=storage_gib,
            runs=runs,
        )

    def cost_report(
        self, *, since: float = 7 * 86400, by: str = "provider", provider: str | None = None
    ) -> dict[str, Any]:
        """What the executions of the last ``since`` seconds cost, grouped ``by`` provider|user|label|lock|day."""
        return self._backend.cost_report(since=since, by=by, provider=provider)

    def list_budgets(self) -> builtins.list[dict[str, Any]]:
        """Every budget with what was spent in its current period."""
        return self._backend.list_budgets()

    def show_budget(self, name: str) -> dict[str, Any]:
        """One budget, its spending this period and the alerts already sent."""
        return self._backend.show_budget(name)

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
        """Create or replace the budget ``name``: ``{"budget": ..., "created": bool}``."""
        return self._backend.set_budget(
            name,
            amount=amount,
            period=period,
            scopes=scopes,
            alert_at=alert_at,
            enforce=enforce,
            currency=currency,
        )

    def remove_budget(self, name: str) -> None:
        """Delete the budget ``name``."""
        self._backend.remove_budget(name)

    # -- providers -----------------------------------------------------------------------------------------------
    def list_providers(self) -> dict[str, Any]:
        """The installed providers with their capabilities, failed plugins and the price catalog."""
        return self._backend.list_providers()


def _backend_factory(url: str) -> BackendFactory:
    """The factory a plugin serves for ``url``'s scheme (the ``runvoy_backends`` hook; decision 1511)."""
    from runvoy_core.plugins.manager import get_plugins

    scheme = url.partition("://")[0].lower()
    plugins = get_plugins()
    factories: dict[str, BackendFactory] = {}
    failures: builtins.list[str] = []
    try:
        answers = plugins.hooks.hook.runvoy_backends()
    except Exception as exc:  # a plugin's hook that raises: say which, rather than a traceback
        failures.append(f"{type(exc).__name__}: {exc}")
        answers = []
    for answer in reversed(answers):  # pluggy calls the last registered first: the first plugin wins a tie
        if isinstance(answer, dict):
            for served, made in answer.items():
                if callable(made):
                    factories.setdefault(str(served).lower(), made)
    factory = factories.get(scheme)
    if factory is not None:
        return factory
    served = ", ".join(f"{s}://" for s in sorted(factories)) or "none"
    failed = "; ".join(
        [*failures, *(f"plugin {f.plugin!r} failed to load: {f.error}" for f in plugins.failures)]
    )
    raise ConfigError(
        f"no installed plugin serves the server {url} (schemes served: {served})"
        + (f"; {failed}" if failed else ""),
        hint="install the plugin that serves it (runvoy's remote client: see docs/server.md); check "
        "RUNVOY_PLUGINS_ALLOW/BLOCK and RUNVOY_DISABLE_PLUGIN_AUTOLOAD; or unset the server (config key "
        "server, RUNVOY_SERVER) to run on a provider of this machine",
    )


__all__ = ["Runvoy", "RunvoyError", "build_request"]
