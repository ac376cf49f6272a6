"""An HTTP server speaking Google's REST conventions, for the in-repo fakes of Google APIs.

Every request is routed and validated through a DiscoveryValidator; a request that does not match the
official discovery document is refused with the 400/404 body a Google API sends. Tests can inject faults
per method id: an error status before the method runs, or a delay after it ran (a response the client
gives up on while the server did the work).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .discovery import DiscoveryValidator, MatchedMethod, RequestRejected

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ApiError(Exception):
    def __init__(
        self, code: int, message: str, status: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_NAMES.get(code, "UNKNOWN")
        self.headers = headers or {}


def error_body(code: int, message: str, status: str | None = None) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "status": status or STATUS_NAMES.get(code, "UNKNOWN")}
    }


@dataclass
class Fault:
    method_id: str
    status: int | None = None
    delay_after: float = 0.0
    times: int = 1
    hits: int = 0
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """Sent with the injected error (``Retry-After``)."""


@dataclass
class Call:
    method_id: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int = 200
    at: float = 0.0
    """When the server received it, on the server's clock."""


class MonotonicClock:
    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        method_id: str,
        *,
        status: int | None = None,
        delay_after: float = 0.0,
        times: int = 1,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        fault = Fault(
            method_id,
            status=status,
            delay_after=delay_after,
            times=times,
            message=message,
            headers=headers or {},
        )
        with self.lock:
            self.faults.append(fault)
        return fault

    def take(self, method_id: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method_id == method_id and fault.hits < fault.times:
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()


Handler = Callable[[MatchedMethod, dict[str, list[str]], Any], Any]


class GoogleApiServer:
    """Owns a ThreadingHTTPServer on 127.0.0.1 and dispatches validated requests to ``handlers[method_id]``."""

    def __init__(self, validators: list[DiscoveryValidator], handlers: dict[str, Handler]) -> None:
        self.validators = validators
        self.handlers = handlers
        self.faults = FaultPlan()
        self.calls: list[Call] = []
        self._calls_lock = threading.Lock()
        self.clock: Any = MonotonicClock()
        """Stamps each call (a test of quotas sets its manual clock here and on the client)."""
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _dispatch(self, verb: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload, headers = server.handle_with_headers(verb, self.path, raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_PATCH(self) -> None:
                self._dispatch("PATCH")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

            def do_PUT(self) -> None:
                self._dispatch("PUT")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fake-google-api", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GoogleApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def calls_to(self, method_id: str) -> list[Call]:
        with self._calls_lock:
            return [c for c in self.calls if c.method_id == method_id]

    def handle(self, verb: str, raw_path: str, raw_body: bytes) -> tuple[int, Any]:
        status, payload, _ = self.handle_with_headers(verb, raw_path, raw_body)
        return status, payload

    def handle_with_headers(
        self, verb: str, raw_path: str, raw_body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            return 400, error_body(400, "Invalid JSON payload received.")
        method: MatchedMethod | None = None
        rejection: RequestRejected | None = None
        for validator in self.validators:
            try:
                method = validator.match(verb, path)
                validator.check_query(method, query)
                validator.check_body(method, body)
                rejection = None
                break
            except RequestRejected as exc:
                # keep the most specific answer: a validation error beats "no such path" from another API
                if rejection is None or exc.code == 400 or rejection.code == 404:
                    rejection = exc
                method = None
        call = Call(method.id if method else "?", path, query, body, at=self.clock.monotonic())
        with self._calls_lock:
            self.calls.append(call)
        if method is None:
            assert rejection is not None
            call.status = rejection.code
            return rejection.code, error_body(rejection.code, rejection.message), {}
        fault = self.faults.take(method.id)
        if fault is not None and fault.status is not None:
            call.status = fault.status
            return (
                fault.status,
                error_body(fault.status, fault.message or f"injected fault on {method.id}"),
                fault.headers,
            )
        handler = self.handlers.get(method.id)
        if handler is None:
            call.status = 501
            return 501, error_body(501, f"{method.id} is not implemented by this fake", "UNIMPLEMENTED"), {}
        try:
            result = handler(method, query, body)
            status = 200
        except ApiError as exc:
            call.status = exc.code
            return exc.code, error_body(exc.code, exc.message, exc.status), exc.headers
        except RequestRejected as exc:
            call.status = exc.code
            return exc.code, error_body(exc.code, exc.message), {}
        if fault is not None and fault.delay_after:
            time.sleep(fault.delay_after)
        return status, result, {}


def rfc3339(ts: float) -> str:
    """A timestamp as Google's JSON mapping writes it (UTC, nanosecond precision, Z)."""
    whole = int(ts)
    nanos = round((ts - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{nanos:09d}Z"


__all__ = ["ApiError", "Fault", "GoogleApiServer", "HTTPStatus", "error_body", "rfc3339"]
