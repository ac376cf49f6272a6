"""A fake of the Azure Resource Manager API for Container Instances (api-version 2023-05-01), spoken over
plain HTTP to the real azure-mgmt-containerinstance client.

Started container groups really run: the fake hands the container's command and environment to the
CloudSimulator, and the simulator adapter (``AciAdapter``) writes the output into the group's log (as
``list_logs(timestamps=True)`` returns it) and the exit code, start and finish times into the instance
view. Behaviour modelled on ACI:
- PUT answers 201 with ``provisioningState`` Pending and an ``Azure-AsyncOperation`` header; the group has
  no ``instanceView`` until it is placed; the container's ``currentState`` goes Waiting -> Running ->
  Terminated; the group's state ends Succeeded/Failed (restartPolicy Never) or Stopped (stop API).
- A PUT on an existing group with changed properties, or on an ended group, redeploys it (the command
  runs again): ``launches`` counts how often each group's command was started.
- Listing returns groups without their instance view; secure environment values are never returned.
- Stop ends the containers at once and drops the group's log (as ACI deallocates the group).
Faults are injected per request (status + headers, or a delay after the work is done).
``read_quota`` models ARM's subscription read limit: past ``limit`` GETs of a subscription in ``window``
seconds of the fake's ``clock``, a GET is answered 429 SubscriptionRequestsThrottled with a Retry-After.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from runvoy_core.providers.local.process import ExitInfo
from runvoy_core.testing.simulator import CloudSimulator, SimulatedTask

from .aci_schema import validate_group, validate_name

API_VERSION = "2023-05-01"
PROVIDER = "Microsoft.ContainerInstance"
_GROUPS = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.containerinstance/containergroups"
    r"(?:/(?P<name>[^/]+)(?:/(?P<action>stop|start|restart)|/containers/(?P<container>[^/]+)/logs)?)?$",
    re.I,
)
_RESOURCE_GROUP = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)$", re.I)
_OPERATION = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.containerinstance/locations/[^/]+/operations/(?P<op>[^/]+)$",
    re.I,
)


def stamp(epoch: float) -> str:
    """RFC 3339 with nanoseconds, as ACI's log lines and Docker write them."""
    nanos = round(epoch * 1e9)
    seconds, rest = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    times: int
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_after: float = 0.0
    """Do the work, then wait this long before answering (a client-side timeout on a request that succeeded)."""
    hits: int = 0
    code: str = "InjectedFault"
    message: str | None = None


class MonotonicClock:
    def monotonic(self) -> float:
        return time.monotonic()


class ReadQuota:
    """At most ``limit`` reads per subscription in any ``window`` seconds (sliding)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.refused = 0
        self._reads: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def take(self, subscription: str, now: float) -> int | None:
        """None when the read is allowed (and counted); else the seconds to put in Retry-After."""
        with self._lock:
            reads = [t for t in self._reads.get(subscription, []) if t > now - self.window]
            self._reads[subscription] = reads
            if len(reads) >= self.limit:
                self.refused += 1
                return max(1, math.ceil(reads[0] + self.window - now))
            reads.append(now)
            return None


@dataclass
class Group:
    sub: str
    rg: str
    name: str
    body: dict[str, Any]
    provisioning: str = "Pending"
    state: str | None = None  # group instance view state; None = not placed yet
    container_state: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    task: SimulatedTask | None = None
    stop_requested: bool = False
    created: float = field(default_factory=time.time)

    @property
    def container(self) -> dict[str, Any]:
        return self.body["properties"]["containers"][0]

    @property
    def ended(self) -> bool:
        return self.state in ("Succeeded", "Failed", "Stopped")


class AciAdapter:
    """CloudSimulator adapter: the running command's life, written into the fake's group."""

    def __init__(self, fake: FakeAci, group: Group) -> None:
        self.fake = fake
        self.group = group

    def on_start(self, task: SimulatedTask) -> None:
        with self.fake.lock:
            now = task.started_at or time.time()
            self.group.events.append(self.fake.event("Pulled", "Successfully pulled image", now))
            self.group.events.append(self.fake.event("Started", "Started container", now))
            self.group.container_state = {"state": "Running", "startTime": iso(now), "detailStatus": ""}
            self.group.provisioning = "Succeeded"
            self.group.state = "Running"

    def on_output(self, task: SimulatedTask, stream: str, timestamp: float, lines: list[str]) -> None:
        with self.fake.lock:
            if self.group.stop_requested and self.fake.drop_logs_on_stop:
                return
            at = stamp(timestamp)
            self.group.log.extend(f"{at} {line}" for line in lines)

    def on_exit(self, task: SimulatedTask, info: ExitInfo) -> None:
        with self.fake.lock:
            group = self.group
            if task.started_at is None:  # stopped before it ran
                group.state = "Stopped"
                group.provisioning = "Succeeded"
                return
            code = info.exit_code if info.exit_code is not None else 137
            group.container_state = {
                "state": "Terminated",
                "startTime": iso(info.started_at),
                "finishTime": iso(info.finished_at),
                "exitCode": code,
                "detailStatus": "Completed" if code == 0 else ("Killed" if info.signal else "Error"),
            }
            group.state = "Stopped" if group.stop_requested else ("Succeeded" if code == 0 else "Failed")


class FakeAci:
    def __init__(self, simulator: CloudSimulator) -> None:
        self.simulator = simulator
        self.lock = threading.RLock()
        self.groups: dict[tuple[str, str], Group] = {}
        self.resource_groups: dict[str, str] = {}
        self.operations: dict[str, tuple[str, str]] = {}
        self.launches: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.stamps: list[tuple[float, str, str]] = []
        """(time on ``clock``, method, path) of each request."""
        self.clock: Any = MonotonicClock()
        self.read_quota: ReadQuota | None = None
        self.faults: list[Fault] = []
        self.start_delay = 0.0
        self.start_gate: threading.Event | None = None
        """When set, containers start only once the test sets the event (no start races a loaded machine)."""
        self.hold_pending = False
        """New groups are never placed (they stay Pending until stopped or deleted)."""
        self.drop_logs_on_stop = True
        self.missing_images: set[str] = {"registry.example/does-not-exist:1"}
        """Images whose pull fails: the group ends Failed with a Warning event, as ACI reports it."""
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle of the server --------------------------------------------------------------------------------
    def start(self) -> FakeAci:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-aci", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def reset(self) -> None:
        with self.lock:
            for group in self.groups.values():
                if group.task is not None:
                    group.task.stop(0)
            self.groups.clear()
            self.operations.clear()
            self.launches.clear()
            self.requests.clear()
            self.stamps.clear()
            self.clock = MonotonicClock()
            self.read_quota = None
            self.faults.clear()
            self.start_delay = 0.0
            self.start_gate = None
            self.hold_pending = False
            self.drop_logs_on_stop = True

    # -- test controls ------------------------------------------------------------------------------------------
    def inject(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        delay_after: float = 0.0,
        code: str = "InjectedFault",
        message: str | None = None,
    ) -> Fault:
        fault = Fault(method.upper(), re.compile(path, re.I), times, status, headers or {}, delay_after)
        fault.code, fault.message = code, message
        with self.lock:
            self.faults.append(fault)
        return fault

    def group(self, name: str, rg: str | None = None) -> Group | None:
        with self.lock:
            for (group_rg, group_name), group in self.groups.items():
                if group_name == name and (rg is None or rg.lower() == group_rg):
                    return group
        return None

    def count(self, method: str, fragment: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and fragment in p)

    def event(self, name: str, message: str, at: float, kind: str = "Normal") -> dict[str, Any]:
        return {
            "count": 1,
            "firstTimestamp": iso(at),
            "lastTimestamp": iso(at),
            "name": name,
            "message": message,
            "type": kind,
        }

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.path.search(path) and fault.hits < fault.times:
                    fault.hits += 1
                    return fault
        return None

    # -- resources ----------------------------------------------------------------------------------------------
    def _group_id(self, group: Group) -> str:
        return f"/subscriptions/{group.sub}/resourceGroups/{group.rg}/providers/{PROVIDER}/containerGroups/{group.name}"

    def render(self, group: Group, *, instance_view: bool = True) -> dict[str, Any]:
        body = copy.deepcopy(group.body)
        props = body.setdefault("properties", {})
        props.setdefault("restartPolicy", "Always")
        props["provisioningState"] = group.provisioning
        for container in props["containers"]:
            for variable in container["properties"].get("environmentVariables") or []:
                variable.pop("secureValue", None)  # ACI never returns secure values
        for credential in props.get("imageRegistryCredentials") or []:
            credential.pop("password", None)  # nor registry passwords
        if instance_view and group.state is not None:
            view: dict[str, Any] = {"restartCount": 0, "events": copy.deepcopy(group.events)}
            if group.container_state is not None:
                view["currentState"] = copy.deepcopy(group.container_state)
            props["containers"][0]["properties"]["instanceView"] = view
            props["instanceView"] = {"events": [], "state": group.state}
        body.update(
            {
                "id": self._group_id(group),
                "name": group.name,
                "type": f"{PROVIDER}/containerGroups",
            }
        )
        return body

    def _launch(self, group: Group) -> None:
        self.launches[group.name] = self.launches.get(group.name, 0) + 1
        group.state, group.container_state, group.log, group.stop_requested = "Pending", None, [], False
        group.provisioning = "Creating"
        if self.hold_pending:
            group.state = None
            group.provisioning = "Pending"
            return
        now = time.time()
        image = group.container["properties"]["image"]
        group.events = [self.event("Pulling", f'pulling image "{image}"', now)]
        group.container_state = {"state": "Waiting", "detailStatus": "Pulling image"}
        if image in self.missing_images:
            message = f'Failed to pull image "{image}": manifest unknown'
            group.events.append(self.event("Failed", message, now, kind="Warning"))
            group.container_state = {"state": "Waiting", "detailStatus": "ErrImagePull"}
            group.provisioning, group.state = "Failed", "Failed"
            return
        props = group.container["properties"]
        argv = props.get("command") or ["/bin/sh", "-c", "true"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        for variable in props.get("environmentVariables") or []:
            env[variable["name"]] = variable.get("value") or variable.get("secureValue") or ""
        key = f"{group.rg}/{group.name}#{self.launches[group.name]}"
        group.task = self.simulator.launch(
            key, argv, env, AciAdapter(self, group), start_delay=self.start_delay, start_gate=self.start_gate
        )

    def put_group(self, sub: str, rg: str, name: str, body: Any) -> tuple[int, Group]:
        problem = validate_name(name) or validate_group(body)
        if problem:
            raise ArmError(400, *problem)
        with self.lock:
            if rg.lower() not in self.resource_groups:
                raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
            existing = self.groups.get((rg.lower(), name))
            clean = {k: v for k, v in body.items() if k not in ("id", "name", "type")}
            if existing is not None:
                same = existing.body == clean
                if same and not existing.ended:
                    return 200, existing  # nothing changed: no redeploy
                existing.body = clean
                self._launch(existing)  # an update (or a PUT on an ended group) redeploys: the command reruns
                return 200, existing
            group = Group(sub=sub, rg=rg.lower(), name=name, body=clean)
            self.groups[(rg.lower(), name)] = group
            self._launch(group)
            return 201, group

    def stop_group(self, group: Group) -> None:
        with self.lock:
            group.stop_requested = True
            if self.drop_logs_on_stop:
                group.log = []
            task = group.task
            if task is None or group.state is None:
                group.state = "Stopped"
                group.provisioning = "Succeeded"
        if task is not None and not task.done:
            task.stop(0)

    def delete_group(self, group: Group) -> None:
        with self.lock:
            self.groups.pop((group.rg, group.name), None)
        if group.task is not None and not group.task.done:
            group.task.stop(0)

    def logs(self, group: Group, tail: int | None, timestamps: bool) -> str:
        with self.lock:
            lines = list(group.log)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        if not timestamps:
            lines = [line.split(" ", 1)[1] if " " in line else "" for line in lines]
        return "".join(line + "\n" for line in lines)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAci
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # the test output stays clean
        return

    # -- plumbing -----------------------------------------------------------------------------------------------
    def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timed-out request): its work is done anyway

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"code": code, "message": message}}, headers)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ArmError(
                400, "InvalidRequestContent", "The request content could not be deserialized."
            ) from None

    def _handle(self, method: str) -> None:
        parsed = urlparse(self.path)
        path, query = parsed.path, parse_qs(parsed.query)
        fake = self.fake
        with fake.lock:
            fake.requests.append((method, path))
            fake.stamps.append((fake.clock.monotonic(), method, path))
        try:
            body = self._body() if method in ("PUT", "POST", "PATCH") else None
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                raise ArmError(
                    401,
                    "AuthenticationFailed",
                    "Authentication failed. The 'Authorization' header is missing.",
                )
            if query.get("api-version", [None])[0] is None:
                raise ArmError(
                    400, "MissingApiVersionParameter", "The api-version query parameter is required."
                )
            quota = fake.read_quota
            sub = path.split("/")[2] if path.startswith("/subscriptions/") else ""
            wait = quota.take(sub, fake.clock.monotonic()) if quota is not None and method == "GET" else None
            if wait is not None:
                self._error(
                    429,
                    "SubscriptionRequestsThrottled",
                    f"Number of 'read' requests for subscription '{sub}' exceeded. Please try again after "
                    f"'{wait}' seconds.",
                    {"Retry-After": str(wait)},
                )
                return
            fault = fake._fault_for(method, path)
            if fault is not None and fault.status is not None:
                message = fault.message or f"injected {fault.status}"
                self._error(fault.status, fault.code, message, fault.headers)
                return
            status, payload, headers = self._route(method, path, query, body)
            if fault is not None and fault.delay_after:
                time.sleep(fault.delay_after)
            self._send(status, payload, headers)
        except ArmError as exc:
            self._error(exc.status, exc.code, exc.message)
        except Exception as exc:  # a bug in the fake shows up as a 500 the test will see
            self._error(500, "FakeInternalError", f"{type(exc).__name__}: {exc}")

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str] | None]:
        fake = self.fake
        match = _OPERATION.match(path)
        if match and method == "GET":
            with fake.lock:
                op = fake.operations.get(match["op"])
                if op is None:
                    raise ArmError(404, "OperationNotFound", "no such operation")
                group = fake.groups.get((op[0], op[1]))
                done = group is None or (group.state is not None and group.state != "Pending")
            return 200, {"id": match["op"], "status": "Succeeded" if done else "InProgress"}, None
        match = _RESOURCE_GROUP.match(path)
        if match:
            rg = match["rg"]
            if method == "GET":
                location = fake.resource_groups.get(rg.lower())
                if location is None:
                    raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
                return (
                    200,
                    {"name": rg, "location": location, "properties": {"provisioningState": "Succeeded"}},
                    None,
                )
            if method == "PUT":
                fake.resource_groups[rg.lower()] = (body or {}).get("location", "eastus")
                return 201, {"name": rg, "location": fake.resource_groups[rg.lower()]}, None
        match = _GROUPS.match(path)
        if not match:
            raise ArmError(404, "InvalidResourceType", f"no route for {method} {path}")
        sub, rg, name = match["sub"], match["rg"], match["name"]
        if name is None:
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", method)
            with fake.lock:
                if rg.lower() not in fake.resource_groups:
                    raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
                groups = [g for (grg, _), g in fake.groups.items() if grg == rg.lower()]
                value = [fake.render(g, instance_view=False) for g in groups]
            return 200, {"value": value}, None
        if method == "PUT" and match["action"] is None and match["container"] is None:
            status, group = fake.put_group(sub, rg, name, body)
            op = uuid.uuid4().hex
            with fake.lock:
                fake.operations[op] = (group.rg, group.name)
                rendered = fake.render(group)
            location = group.body["location"]
            op_url = (
                f"http://{self.headers.get('Host')}/subscriptions/{sub}/providers/{PROVIDER}/locations/"
                f"{location}/operations/{op}?api-version={API_VERSION}"
            )
            return status, rendered, {"Azure-AsyncOperation": op_url}
        group = fake.group(name, rg)
        if group is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{PROVIDER}/containerGroups/{name}' under resource group '{rg}' was not found.",
            )
        if match["container"] is not None:
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", method)
            if match["container"] != group.container["name"]:
                raise ArmError(404, "ContainerNotFound", f"container '{match['container']}' not found")
            if group.state is None:
                raise ArmError(400, "ContainerGroupNotReady", f"container group '{name}' is not ready yet")
            tail = query.get("tail", [None])[0]
            timestamps = query.get("timestamps", ["false"])[0].lower() == "true"
            content = fake.logs(group, int(tail) if tail is not None else None, timestamps)
            return 200, {"content": content}, None
        if match["action"] == "stop" and method == "POST":
            fake.stop_group(group)
            return 204, None, None
        if match["action"] is None and method == "GET":
            with fake.lock:
                return 200, fake.render(group), None
        if match["action"] is None and method == "DELETE":
            fake.delete_group(group)
            return 204, None, None
        raise ArmError(405, "MethodNotAllowed", f"{method} {path}")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")
