"""``RemoteBackend``: the Backend Protocol (runvoy_core.backend) over a runvoy server's HTTP API.

Each method is one request (or one event stream) to the route of the same name (runvoy_server/routes,
decision 1516), and returns the same records a LocalBackend returns: the server sends them as their msgspec
JSON and they are decoded into the same classes. Errors are raised as the server raised them.

An attached run (``run``) is one event stream: ``started`` hands the caller a RunHandle whose ``cancel`` the
CLI's Ctrl-C handler sets; this backend sees it within CANCEL_CHECK seconds and asks the server to stop the
run the way a local Ctrl-C does (graceful, then kill on the second press), then keeps streaming until the
run's ``end``, so the exit code is the command's (143 after the graceful stop, 137 after the kill).
"""

from __future__ import annotations

import builtins
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from runvoy_core.errors import ServerUnavailable, ValidationFailed
from runvoy_core.logging import get_logger
from runvoy_core.remote import sse
from runvoy_core.remote.client import Client, error_from_body, hang_up

if TYPE_CHECKING:
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

log = get_logger("runvoy.remote")

CANCEL_CHECK = 0.2
"""Seconds between two looks at ``handle.cancel`` while an attached run streams."""
WAIT_SLICE = 20.0
"""The longest server-side wait (``POST .../wait``) asked for at once; a longer wait is several requests
(decision 1516). The server shortens it further to stay within its own request timeout."""
LOG_BATCH = 1000
"""Log events handed to a sink in one ``write_events`` call at most."""
MAX_RESUMES = 5
"""How many times an attached run's cut stream is picked up again before the error is raised."""
RESUME_PAUSE = 0.5
"""Seconds before the first pick-up (doubling, at most 5 s): a restarting replica, a load balancer's switch."""
"""Log events handed to a sink in one ``write_events`` call at most."""
MAX_WAIT = 30 * 86400
_OPTION_KEYS = frozenset(
    {
        "image",
        "env",
        "secrets",
        "resources",
        "cpu",
        "memory",
        "spot",
        "storage_gib",
        "arch",
        "architecture",
        "region",
        "timeout",
        "stop_grace",
        "lock",
        "on_conflict",
        "lock_timeout",
        "lock_slots",
        "labels",
        "workdir",
    }
)


def _check_number(
    name: str, value: float | int | None, low: float, high: float, *, integer: bool = False
) -> None:
    """The same bounds and words as the local backend's checks of the Python API's numbers."""
    if value is None:
        return
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if ok and not integer:
        ok = value == value and value not in (float("inf"), float("-inf"))
    if not ok or not low <= value <= high:
        kind = "a whole number" if integer else "a number"
        raise ValidationFailed(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}")


def run_body(command: str | list[str] | ExecutionRequest, options: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a run or submit: the options as the caller gave them (so the server's defaults apply
    exactly as they would to a local call), checked here first by the same rules the server applies."""
    from runvoy_core.api import build_request
    from runvoy_core.models import ExecutionRequest

    image_check = options.pop("image_check", True)
    if image_check is not None:
        from runvoy_core import inputs

        try:
            inputs.SWITCH.parse(image_check)
        except ValueError as exc:
            raise ValidationFailed(f"image_check: {exc}; expected {inputs.SWITCH.text}") from None
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise ValidationFailed(f"invalid request: unknown option {', '.join(unknown)}")
    build_request(command, **options)  # the same errors, before anything is sent
    body: dict[str, Any]
    if isinstance(command, ExecutionRequest):
        body = command.model_dump(mode="json")
        body.pop("image_digest", None)
        body.pop("image_platform_digest", None)
        body = {k: v for k, v in body.items() if v is not None}
        if "lock" not in body:  # their defaults, which build_request refuses without a lock
            for key in ("on_conflict", "lock_timeout", "lock_slots"):
                body.pop(key, None)
        # the resources the request named, in their input form (a request object gets no server defaults,
        # as build_request gives it none locally: an empty table still says "sized by the request")
        stored = body.pop("resources", {}) or {}
        named = set(stored.get("explicit") or ())
        resources = {k: stored[k] for k in ("cpu", "architecture", "spot", "storage_gib") if k in named}
        if "memory_mib" in named:
            resources["memory"] = f"{stored['memory_mib']}MiB"
        body["resources"] = resources
    else:
        body = {k: _jsonable(v) for k, v in options.items() if v is not None}
        resources = dict(body.pop("resources", None) or {})
        for key in ("cpu", "memory", "spot", "storage_gib"):
            if key in body:
                resources[key] = body.pop(key)
        for key in ("arch", "architecture"):
            if key in body:
                resources["architecture"] = body.pop(key)
        if resources:
            body["resources"] = resources
        if isinstance(command, str):
            body["command"] = command
        else:
            body["argv"] = list(command)
    if image_check is not None:
        body["image_check"] = bool(image_check)
    return body


def _jsonable(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):
        return value.value  # an enum
    return value


def _path(execution_id: str) -> str:
    if not execution_id.strip():
        raise ValidationFailed("an execution id is required")
    return "/v1/executions/" + quote(execution_id.strip(), safe="")


class RemoteBackend:
    """The Backend of ``Runvoy(server=URL, token=...)``."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        *,
        provider: str | None = None,
        timeout: float | None = None,
    ) -> None:
        from runvoy_core.remote.client import DEFAULT_TIMEOUT, normalize_server
        from runvoy_core.remote.tokens import resolve_token

        url = normalize_server(server)
        self.client = Client(url, resolve_token(url, token), timeout=timeout or DEFAULT_TIMEOUT)
        self._info: dict[str, Any] | None = None
        if provider is not None and provider != self.provider_name:
            from runvoy_core.errors import UsageError

            raise UsageError(
                f"the runvoy server at {url} runs on provider {self.provider_name!r}, not {provider!r}",
                hint="drop --provider (RUNVOY_PROVIDER), or use the server that runs on it",
            )

    def __repr__(self) -> str:
        return f"RemoteBackend({self.client.server!r})"

    @property
    def server(self) -> str:
        return self.client.server

    @property
    def info(self) -> dict[str, Any]:
        """What the server says about itself (its provider, its version)."""
        if self._info is None:
            self._info = dict(self.client.request("GET", "/v1/info"))
        return self._info

    @property
    def provider_name(self) -> str:
        """The provider the server runs on (asked once)."""
        return str(self.info.get("provider", "local"))

    @provider_name.setter
    def provider_name(self, value: str) -> None:
        self.info["provider"] = value

    def close(self) -> None:
        self.client.close()

    def team(self) -> TeamAdmin:
        from runvoy_core.remote.admin import RemoteTeamAdmin

        return RemoteTeamAdmin(self.client)

    # -- running ---------------------------------------------------------------------------------------------
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
        body = run_body(command, {**options, "image_check": image_check})
        return _AttachedRun(self.client, body, log_sink, on_message, on_lock_wait, on_start).follow()

    def submit(
        self,
        command: str | list[str] | ExecutionRequest,
        *,
        on_message: Messages | None = None,
        on_lock_wait: Callable[[LockRecord, float], None] | None = None,
        image_check: bool = True,
        **options: Any,
    ) -> Execution:
        body = run_body(command, {**options, "image_check": image_check})
        body["detach"] = True
        return _AttachedRun(self.client, body, None, on_message, on_lock_wait, None).follow()

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
        body = self._playbook_body(text, name, source, options)
        return _AttachedRun(
            self.client, body, log_sink, on_message, on_lock_wait, on_start, path="/v1/playbooks/runs"
        ).follow()

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
        body = self._playbook_body(text, name, source, options)
        body["detach"] = True
        return _AttachedRun(
            self.client, body, None, on_message, on_lock_wait, None, path="/v1/playbooks/runs"
        ).follow()

    @staticmethod
    def _playbook_body(
        text: str, name: str | None, source: str | None, options: dict[str, Any]
    ) -> dict[str, Any]:
        """The playbook's text as given (the server parses it, and names it in its errors by ``source``)."""
        if not isinstance(text, str):
            raise ValidationFailed("a playbook is given as its YAML text")
        image_check = options.pop("image_check", None)
        body = run_body("true", options)  # the options, checked as run's
        body.pop("command", None)
        body.pop("image_check", None)
        if image_check is not None:
            body["image_check"] = bool(image_check)
        body["text"] = text
        if name is not None:
            body["name"] = name
        if source is not None:
            body["source"] = source
        return body

    # -- reading ---------------------------------------------------------------------------------------------
    def resolve_id(self, id_or_prefix: str) -> str:
        return self.get(id_or_prefix).id

    def get(self, execution_id: str) -> Execution:
        return _execution(self.client.request("GET", _path(execution_id)))

    def status(self, execution_id: str) -> Execution:
        return _execution(self.client.request("GET", _path(execution_id) + "/status"))

    def events(self, execution_id: str) -> builtins.list[StatusChange]:
        from runvoy_core.models import StatusChange

        data = self.client.request("GET", _path(execution_id) + "/events")
        return [StatusChange.model_validate(item) for item in data]

    def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.2,
        poll_max: float | None = None,
    ) -> Execution:
        """Server-side waits of at most WAIT_SLICE seconds each, until the run ends or ``timeout`` passes
        (the server polls; ``poll``/``poll_max`` are checked, then left to it)."""
        _check_number("timeout", timeout, 0, MAX_WAIT)
        _check_number("poll", poll, 0.001, 300)
        _check_number("poll_max", poll_max, 0.001, 300)
        deadline = None if timeout is None else time.monotonic() + timeout
        target = _path(execution_id) + "/wait"
        while True:
            left = WAIT_SLICE if deadline is None else max(0.0, min(WAIT_SLICE, deadline - time.monotonic()))
            record = _execution(
                self.client.request("POST", target, body={"timeout": round(left, 3)}, timeout=left + 30.0)
            )
            if record.status.is_terminal or (deadline is not None and time.monotonic() >= deadline):
                return record
            target = _path(record.id) + "/wait"

    def logs(
        self, execution_id: str, *, follow: bool = False, tail: int | None = None, pattern: str | None = None
    ) -> Iterator[LogEvent]:
        _check_number("tail", tail, 0, 1_000_000, integer=True)
        return self._log_events(execution_id, follow=follow, tail=tail, pattern=pattern)

    def _log_events(
        self, execution_id: str, *, follow: bool, tail: int | None, pattern: str | None
    ) -> Iterator[LogEvent]:
        from runvoy_core.models import LogEvent

        query = {"follow": follow, "tail": tail, "grep": pattern}
        events = self.client.stream("GET", _path(execution_id) + "/logs/stream", query=query)
        try:
            for event in events:
                if event.name == sse.LOG:
                    yield LogEvent.model_validate_json(event.data)
                elif event.name == sse.END:
                    return
                elif event.name == sse.ERROR:
                    raise error_from_body(json.loads(event.data))
            raise _broken(self.server, execution_id)
        finally:
            events.close()  # type: ignore[attr-defined]

    def log_page(self, execution_id: str, *, cursor: str | None = None, limit: int = 1000) -> LogPage:
        from runvoy_core.models import LogPage

        _check_number("limit", limit, 1, 10_000, integer=True)
        data = self.client.request(
            "GET", _path(execution_id) + "/logs", query={"cursor": cursor, "limit": limit}
        )
        return LogPage.model_validate(data)

    def copy_logs(self, execution_id: str, sink: LogSink, *, follow: bool = False) -> None:
        batch: list[LogEvent] = []
        for event in self._log_events(execution_id, follow=follow, tail=None, pattern=None):
            batch.append(event)
            if len(batch) >= LOG_BATCH or follow:
                sink.write_events(batch)
                batch = []
        if batch:
            sink.write_events(batch)

    def list(
        self,
        *,
        statuses: set[Status] | None = None,
        limit: int = 50,
        since: datetime | None = None,
        labels: dict[str, str] | None = None,
        refresh: bool = True,
    ) -> builtins.list[Execution]:
        _check_number("limit", limit, 1, 10_000, integer=True)
        query: dict[str, Any] = {
            "status": sorted(str(s) for s in statuses or ()),
            "limit": limit,
            "since": since,
            "label": [f"{k}={v}" for k, v in (labels or {}).items()],
            "refresh": refresh,
        }
        data = self.client.request("GET", "/v1/executions", query=query)
        return [_execution(item) for item in data["executions"]]

    # -- acting ----------------------------------------------------------------------------------------------
    def kill(self, execution_id: str, *, force: bool = False, wait: float | None = None) -> Execution:
        _check_number("wait", wait, 0, MAX_WAIT)
        record = _execution(
            self.client.request("POST", _path(execution_id) + "/kill", body={"force": bool(force)})
        )
        if wait:
            record = self.wait(record.id, timeout=wait)
        return record

    def reconcile(self, *, dry_run: bool = False) -> builtins.list[dict[str, Any]]:
        data = self.client.request("POST", "/v1/reconcile", body={"dry_run": bool(dry_run)})
        return [dict(item) for item in data["actions"]]

    # -- locks -----------------------------------------------------------------------------------------------
    def list_locks(self) -> builtins.list[dict[str, Any]]:
        return [dict(item) for item in self.client.request("GET", "/v1/locks")["locks"]]

    def lock_status(self, name: str) -> dict[str, Any]:
        return dict(self.client.request("GET", _lock_path(name)))

    def release_lock(self, name: str, *, force: bool = False, version: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"force": bool(force)}
        if version is not None:
            body["version"] = version
        return dict(self.client.request("POST", _lock_path(name) + "/release", body=body))

    # -- cost --------------------------------------------------------------------------------------------------
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
        body = {
            "cpu": cpu,
            "memory": memory,
            "duration": duration,
            "provider": provider,
            "region": region,
            "arch": arch,
            "spot": spot,
            "storage_gib": storage_gib,
            "runs": runs,
        }
        return dict(self.client.request("POST", "/v1/cost/estimate", body=body))

    def cost_report(
        self, *, since: float = 7 * 86400, by: str = "provider", provider: str | None = None
    ) -> dict[str, Any]:
        query = {"since": since, "by": by, "provider": provider}
        return dict(self.client.request("GET", "/v1/cost/report", query=query))

    # -- budgets -----------------------------------------------------------------------------------------------
    def list_budgets(self) -> builtins.list[dict[str, Any]]:
        return [dict(item) for item in self.client.request("GET", "/v1/budgets")["budgets"]]

    def show_budget(self, name: str) -> dict[str, Any]:
        return dict(self.client.request("GET", _budget_path(name)))

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
        body = {
            "amount": str(amount),
            "period": period,
            "scopes": list(scopes or []),
            "alert_at": alert_at,
            "enforce": bool(enforce),
            "currency": currency,
        }
        return dict(self.client.request("PUT", _budget_path(name), body=body))

    def remove_budget(self, name: str) -> None:
        self.client.request("DELETE", _budget_path(name))

    # -- providers ---------------------------------------------------------------------------------------------
    def list_providers(self) -> dict[str, Any]:
        return dict(self.client.request("GET", "/v1/providers"))


def _lock_path(name: str) -> str:
    if not name.strip():
        raise ValidationFailed("a lock name is required")
    return "/v1/locks/" + quote(name.strip(), safe="/")


def _budget_path(name: str) -> str:
    if not name.strip():
        raise ValidationFailed("a budget name is required")
    return "/v1/budgets/" + quote(name.strip(), safe="")


def _execution(data: Any) -> Execution:
    from runvoy_core.models import Execution

    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "duration_seconds"}
    return Execution.model_validate(data)


def _broken(server: str, execution_id: str | None) -> ServerUnavailable:
    follow = f"runvoy status {execution_id}" if execution_id else "runvoy list"
    return ServerUnavailable(
        f"the runvoy server at {server} closed the stream before the end",
        hint=f"the run goes on on the server: see {follow} (or runvoy logs -f)",
    )


class _StreamBroken(Exception):
    def __init__(self, error: ServerUnavailable) -> None:
        super().__init__(str(error))
        self.error = error


class _AttachedRun:
    """One attached (or detached) run's event stream, read by a thread into a queue so that the calling
    thread can act on ``handle.cancel`` (set by a signal handler) while no event arrives.

    A stream cut once the run has started (the replica serving it restarted, a proxy dropped it) is picked
    up again through the server's address — behind a load balancer, another replica: the run's logs followed
    from where they were cut, then its final record (decision 1518)."""

    def __init__(
        self,
        client: Client,
        body: dict[str, Any],
        sink: LogSink | None,
        on_message: Messages | None,
        on_lock_wait: Callable[[LockRecord, float], None] | None,
        on_start: Callable[[RunHandle], None] | None,
        *,
        path: str = "/v1/runs",
    ) -> None:
        self.path = path
        self.client = client
        self.body = body
        self.sink = sink
        self.on_message = on_message
        self.on_lock_wait = on_lock_wait
        self.on_start = on_start
        self.events: queue.Queue[sse.Event | BaseException | None] = queue.Queue()
        self.handle: RunHandle | None = None
        self.asked: Any = None  # the StopReason last sent to the server
        self.pending: builtins.list[sse.Event | BaseException | None] = []
        """An item taken from the queue while gathering log events, handled next."""
        self.delivered = 0
        """Log events handed to the sink so far."""
        self.skip = 0
        """Log events a resumed stream sends again (it reads from the start), dropped."""
        self.resumed = False

    @staticmethod
    def _read(stream: Iterator[sse.Event], events: queue.Queue[sse.Event | BaseException | None]) -> None:
        try:
            for event in stream:
                events.put(event)
        except BaseException as exc:  # handed to the calling thread, which raises it
            events.put(exc)
        else:
            events.put(None)

    def follow(self) -> Execution:
        method, path = "POST", self.path
        body: dict[str, Any] | None = self.body
        query: dict[str, Any] | None = None
        resumes = 0
        while True:
            connections: builtins.list[Any] = []
            stream = self.client.stream(method, path, body=body, query=query, opened=connections.append)
            self.events, self.pending = queue.Queue(), []
            reader = threading.Thread(
                target=self._read, args=(stream, self.events), name="runvoy-remote-run", daemon=True
            )
            reader.start()
            try:
                return self._events()
            except _StreamBroken as broken:
                handle = self.handle
                if handle is None or resumes >= MAX_RESUMES:
                    raise broken.error from None
                if self.body.get("detach"):
                    return handle.execution  # it started: that is all a detached run waits for
                log.info("remote.stream_resumed", execution_id=handle.execution.id, error=str(broken.error))
                time.sleep(min(RESUME_PAUSE * 2**resumes, 5.0))
                resumes += 1
                self.resumed, self.skip = True, self.delivered
                method, path, body = "GET", _path(handle.execution.id) + "/logs/stream", None
                query = {"follow": True}
            finally:
                # whatever ends this (the end, an error, a third Ctrl-C): the stream is closed, so the server
                # stops waiting for a lock on behalf of a caller who is gone, and the reader thread ends
                for conn in connections:
                    hang_up(conn)

    def _events(self) -> Execution:
        while True:
            try:
                item = self.pending.pop() if self.pending else self.events.get(timeout=CANCEL_CHECK)
            except queue.Empty:
                self._forward_cancel()
                continue
            if item is None:
                raise _StreamBroken(
                    _broken(self.client.server, self.handle.execution.id if self.handle else None)
                )
            if isinstance(item, ServerUnavailable):
                raise _StreamBroken(item)
            if isinstance(item, BaseException):
                raise item
            done = self._on_event(item)
            if done is not None:
                return done
            self._forward_cancel()

    def _on_event(self, event: sse.Event) -> Execution | None:
        from runvoy_core.models import LockRecord, LogEvent

        if event.name == sse.LOG:
            events = [LogEvent.model_validate_json(event.data)]
            # what has already arrived goes out in one write, as the local runner writes a page at a time
            while len(events) < LOG_BATCH:
                try:
                    more = self.events.get_nowait()
                except queue.Empty:
                    break
                if isinstance(more, sse.Event) and more.name == sse.LOG:
                    events.append(LogEvent.model_validate_json(more.data))
                    continue
                self.pending.append(more)  # handled next, in order
                break
            self._write(events)
            return None
        if event.name == sse.STARTED:
            from runvoy_core.runner import RunHandle

            self.handle = RunHandle(execution=_execution(json.loads(event.data)))
            if self.on_start is not None:
                self.on_start(self.handle)
            return None
        if event.name == sse.MESSAGE:
            if self.on_message is not None:
                self.on_message(event.data)
            return None
        if event.name == sse.LOCK_WAIT:
            if self.on_lock_wait is not None:
                data = json.loads(event.data)
                self.on_lock_wait(LockRecord.model_validate(data["lock"]), float(data["waited"]))
            return None
        if event.name == sse.END:
            if self.resumed and self.handle is not None:
                # the end of the followed logs: the run has ended; its record says how
                return _execution(self.client.request("GET", _path(self.handle.execution.id) + "/status"))
            return _execution(json.loads(event.data))
        if event.name == sse.ERROR:
            raise error_from_body(json.loads(event.data))
        return None  # an event a newer server sends: ignored

    def _write(self, events: builtins.list[LogEvent]) -> None:
        if self.skip:
            dropped = min(self.skip, len(events))
            self.skip -= dropped
            events = events[dropped:]
        self.delivered += len(events)
        if events and self.sink is not None:
            self.sink.write_events(events)

    def _forward_cancel(self) -> None:
        """Ctrl-C once: the server stops the run gracefully; twice: it kills it (``runvoy kill --force``)."""
        handle = self.handle
        if handle is None or handle.cancel is None or handle.cancel == self.asked:
            return
        from runvoy_core.models import StopReason

        wanted = handle.cancel
        self.asked = wanted
        self.client.request(
            "POST", _path(handle.execution.id) + "/kill", body={"force": wanted == StopReason.KILL}
        )
