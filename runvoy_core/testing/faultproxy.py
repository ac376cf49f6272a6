"""A seeded fault-injecting HTTP proxy, put between a cloud SDK and the wire-protocol server it talks to.

Standard library only, so it runs wherever the conformance kit runs. Each proxy listens on 127.0.0.1
(port 0) and forwards to one upstream (moto, Azurite, fake-gcs-server, the in-repo fakes). Proxies that
share one ``Chaos`` draw their faults from one ``random.Random(seed)``; every decision is logged (in the
order requests arrived) so a failing campaign can be studied and replayed with the same seed.

The faults:

- ``delay``: forward after a pause of a few milliseconds;
- ``drop``: close the connection without an answer (the server never saw the request);
- ``429`` / ``500`` / ``503``: answer an error in the service's own dialect (the server never saw it);
- ``lost_answer``: forward, let the server act, then close without passing the answer on — the client
  cannot tell whether its request was carried out, which is what a read timeout after success looks like;
- ``reset``: answer with a TCP reset (RST) instead of a response.

Keep-alive is kept (one upstream connection per client connection), chunked request and response bodies
are streamed through chunk by chunk, and ``Expect: 100-continue`` is answered by the proxy itself.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("delay", "drop", "429", "500", "503", "lost_answer", "reset")

# RFC 9110 7.6.1 hop-by-hop fields, plus Expect (the proxy already answered 100-continue) and the framing
# fields (re-framed on each side)
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
_BLOCK = 64 * 1024


@dataclass(frozen=True)
class ErrorAnswer:
    """An injected error response: status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes


Dialect = Callable[[int, str, dict[str, str]], ErrorAnswer]
"""(status, method, request headers) -> the error answer a service of that kind would send."""

_REASONS = {429: "rate exceeded (injected)", 500: "internal error (injected)", 503: "unavailable (injected)"}


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> ErrorAnswer:
    return ErrorAnswer(
        status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()
    )


def _xml(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> ErrorAnswer:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
        "<RequestId>fault-proxy</RequestId></Error>"
    ).encode()
    return ErrorAnswer(status, {"Content-Type": "application/xml", **(headers or {})}, body)


def aws_dialect(status: int, method: str, headers: dict[str, str]) -> ErrorAnswer:
    """JSON-protocol services (ECS, DynamoDB, CloudWatch Logs, SSM...) answer ``__type``; the others (S3,
    query protocols) an XML ``<Error>``. The codes are the ones botocore treats as throttling / transient."""
    message = _REASONS[status]
    content_type = headers.get("content-type", "")
    if "amz-json" in content_type:
        code = {429: "ThrottlingException", 500: "InternalFailure", 503: "ServiceUnavailable"}[status]
        return _json(
            status,
            {"__type": code, "message": message},
            {"Content-Type": content_type, "x-amzn-ErrorType": code},
        )
    code = {429: "SlowDown", 500: "InternalError", 503: "SlowDown"}[status]
    return _xml(status, code, message)


def google_dialect(status: int, method: str, headers: dict[str, str]) -> ErrorAnswer:
    name = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}[status]
    return _json(status, {"error": {"code": status, "message": _REASONS[status], "status": name}})


def azure_arm_dialect(status: int, method: str, headers: dict[str, str]) -> ErrorAnswer:
    code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}[status]
    return _json(status, {"error": {"code": code, "message": _REASONS[status]}})


def azure_storage_dialect(status: int, method: str, headers: dict[str, str]) -> ErrorAnswer:
    """Blob answers XML; Table answers OData JSON when the client asked for JSON. Both carry the code in
    ``x-ms-error-code``, which is what the Azure SDK reads first."""
    code = {429: "ServerBusy", 500: "InternalError", 503: "ServerBusy"}[status]
    extra = {"x-ms-error-code": code}
    if "json" in headers.get("accept", "") or "json" in headers.get("content-type", ""):
        payload = {"odata.error": {"code": code, "message": {"lang": "en-US", "value": _REASONS[status]}}}
        return _json(status, payload, extra)
    return _xml(status, code, _REASONS[status], extra)


@dataclass(frozen=True)
class Decision:
    seq: int
    proxy: str
    method: str
    path: str
    fault: str | None
    delay_ms: int = 0


@dataclass
class Chaos:
    """The seeded decider shared by a set of proxies: per-fault probabilities (each request gets at most one
    fault), a log of every decision, and a switch to turn faults off (requests still pass)."""

    seed: int
    probabilities: dict[str, float] = field(default_factory=dict)
    delay_ms: tuple[int, int] = (1, 20)
    enabled: bool = True
    keep_log: int = 200_000
    log: list[Decision] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0
    _scripted: list[tuple[str, str | None, str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = set(self.probabilities) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
        if sum(self.probabilities.values()) > 1.0:
            raise ValueError("the fault probabilities add up to more than 1")
        self._random = random.Random(self.seed)

    def once(
        self, fault: str, *, method: str | None = None, path_contains: str = "", proxy: str | None = None
    ) -> None:
        """Give the next matching request ``fault`` (before any random draw): a focused test's or a replayed
        failure's exact fault."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._scripted.append((fault, method, path_contains, proxy))

    def _take_scripted(self, proxy: str, method: str, path: str) -> str | None:
        for i, (fault, want_method, fragment, want_proxy) in enumerate(self._scripted):
            if want_method not in (None, method) or want_proxy not in (None, proxy) or fragment not in path:
                continue
            del self._scripted[i]
            return fault
        return None

    def decide(self, proxy: str, method: str, path: str) -> Decision:
        with self._lock:
            self._seq += 1
            fault: str | None = None
            delay = 0
            # the draws happen whether faults are on or not, so the sequence of a seed does not depend on
            # how long a campaign kept them off
            roll = self._random.random()
            pause = self._random.randint(*self.delay_ms)
            scripted = self._take_scripted(proxy, method, path) if self.enabled else None
            if scripted is not None:
                fault = scripted
            elif self.enabled:
                total = 0.0
                for name in FAULTS:
                    total += self.probabilities.get(name, 0.0)
                    if roll < total:
                        fault = name
                        break
                if fault == "delay":
                    delay = pause
            decision = Decision(self._seq, proxy, method, path.split("?", 1)[0], fault, delay)
            if len(self.log) < self.keep_log:
                self.log.append(decision)
            return decision

    def counts(self) -> dict[str, int]:
        with self._lock:
            counted = Counter(d.fault or "none" for d in self.log)
        return dict(sorted(counted.items()))

    def faulted(self, fault: str | None = None) -> list[Decision]:
        with self._lock:
            return [d for d in self.log if d.fault is not None and (fault is None or d.fault == fault)]

    def write_log(self, path: str) -> None:
        """One line per decision: ``seq proxy method path fault``, for replaying a failing seed."""
        with self._lock:
            lines = [
                f"{d.seq}\t{d.proxy}\t{d.method}\t{d.path}\t{d.fault or '-'}\t{d.delay_ms}" for d in self.log
            ]
        with open(path, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")


class _Abort(Exception):
    """The client connection is gone or must be dropped: end this connection without an answer."""


class FaultProxy:
    """One listening proxy in front of ``upstream`` (``http://host:port``)."""

    def __init__(
        self,
        upstream: str,
        chaos: Chaos,
        *,
        name: str = "proxy",
        dialect: Dialect = google_dialect,
        upstream_timeout: float = 30.0,
        retry_after: str | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the fault proxy forwards plain http only, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.chaos = chaos
        self.name = name
        self.dialect = dialect
        self.upstream_timeout = upstream_timeout
        self.retry_after = retry_after
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"faultproxy-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect_upstream(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            self.upstream_host, self.upstream_port, timeout=self.upstream_timeout
        )


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the decisions are the log

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        super().finish()

    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # -- one request -----------------------------------------------------------------------------------------
    def _proxy(self) -> None:
        owner = self.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        decision = owner.chaos.decide(owner.name, self.command, self.path)
        fault = decision.fault
        try:
            if fault in ("drop", "reset"):
                self._discard_body()
                self._hang_up(reset=fault == "reset")
                return
            if fault in ("429", "500", "503"):
                self._discard_body()
                self._answer_error(int(fault), headers)
                return
            if fault == "delay":
                time.sleep(decision.delay_ms / 1000)
            response = self._forward()
            if fault == "lost_answer":
                response.read()  # the server acted and answered in full; the client never hears of it
                self._drop_upstream()
                self._hang_up(reset=False)
                return
            self._relay(response)
        except _Abort:
            self._drop_upstream()
            self.close_connection = True

    def _chunks(self) -> Iterator[bytes]:
        """The request body of a chunked request, chunk by chunk as the client sends them."""
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise _Abort
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields are hop-by-hop here
                return
            data = self.rfile.read(size)
            self.rfile.readline(3)
            if len(data) < size:
                raise _Abort
            yield data

    def _body(self) -> bytes | Iterator[bytes] | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunks()
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None
        data = self.rfile.read(length)
        if len(data) < length:
            raise _Abort
        return data

    def _discard_body(self) -> None:
        body = self._body()
        if body is not None and not isinstance(body, bytes):
            for _ in body:
                pass

    def _forward(self) -> http.client.HTTPResponse:
        body = self._body()
        chunked = body is not None and not isinstance(body, bytes)
        if self._upstream is None:
            self._upstream = self.owner.connect_upstream()
        upstream = self._upstream
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    upstream.putheader(key, value)
            if chunked:
                upstream.putheader("Transfer-Encoding", "chunked")
            elif isinstance(body, bytes):
                upstream.putheader("Content-Length", str(len(body)))
            elif self.command in ("POST", "PUT", "PATCH"):
                upstream.putheader("Content-Length", "0")
            upstream.endheaders()
            if chunked:
                assert not isinstance(body, bytes | None)
                for chunk in body:
                    upstream.send(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                upstream.send(b"0\r\n\r\n")
            elif body:
                upstream.send(body)
            return upstream.getresponse()
        except (OSError, http.client.HTTPException):
            # the upstream server went away: to the client this is a dropped connection
            raise _Abort from None

    def _relay(self, response: http.client.HTTPResponse) -> None:
        try:
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            bodyless = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
            length = response.getheader("Content-Length")
            if bodyless:
                if length is not None:
                    self.send_header("Content-Length", length)
                self._end_headers(response)
                response.read()
                return
            if length is not None:
                self.send_header("Content-Length", length)
                self._end_headers(response)
                remaining = int(length)
                while remaining > 0:
                    block = response.read(min(_BLOCK, remaining))
                    if not block:
                        raise _Abort
                    self.wfile.write(block)
                    remaining -= len(block)
                return
            # chunked (or close-delimited) upstream: stream it on as chunks, as they arrive
            self.send_header("Transfer-Encoding", "chunked")
            self._end_headers(response)
            while True:
                block = response.read1(_BLOCK)
                if not block:
                    break
                self.wfile.write(b"%x\r\n%b\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException):
            raise _Abort from None
        finally:
            if response.will_close:
                self._drop_upstream()

    def _end_headers(self, response: http.client.HTTPResponse) -> None:
        if self.close_connection or (self.headers.get("Connection", "").lower() == "close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _answer_error(self, status: int, headers: dict[str, str]) -> None:
        answer = self.owner.dialect(status, self.command, headers)
        self.send_response_only(status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        if status == 429 and self.owner.retry_after is not None:
            self.send_header("Retry-After", self.owner.retry_after)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def _drop_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def _hang_up(self, *, reset: bool) -> None:
        self.close_connection = True
        if reset:
            # linger 0: close() sends RST instead of FIN, what a crashed load balancer or NAT does
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
