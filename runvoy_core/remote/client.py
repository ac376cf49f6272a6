"""The HTTP client of the remote backend: JSON requests and event streams to a runvoy server (standard
library http.client; decision 1517).

Errors come back as the server raised them: a JSON error's ``code`` names the class (``error_class``), so
the same exit code, message and hint reach the CLI. A server that cannot be reached, or that answers
something that is not runvoy's API, is ``ServerUnavailable``. The API key goes in one header and nowhere
else: it is never part of a message, a log line or an error.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from runvoy_core.errors import RunvoyError, ServerUnavailable, ValidationFailed, error_class
from runvoy_core.remote import sse

USER_AGENT = "runvoy-remote/1"
TOTP_ENV = "RUNVOY_TOTP"
"""The current one-time password of an admin whose server requires one (decision 1510): sent as X-Runvoy-TOTP."""
REUSE_IDLE = 2.0
"""Seconds a kept-alive connection may idle and still be reused (servers close theirs after ~5 s: uvicorn's
default); an older one is replaced rather than risk a request the server never reads."""
DEFAULT_TIMEOUT = 60.0
"""Seconds to wait for an answer to a plain request (the longest, a bounded server-side wait, takes at most
WAIT_SLICE)."""
STREAM_READ_TIMEOUT = 120.0
"""Seconds without a byte on an event stream before it counts as broken (the server sends a keep-alive
comment every 15 s)."""


@dataclass(frozen=True, slots=True)
class ServerAddress:
    scheme: str
    host: str
    port: int
    base: str
    """The path prefix the API is mounted under (empty, or e.g. ``/runvoy`` behind a proxy)."""

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        from runvoy_core import inputs

        try:
            given = inputs.SERVER_URL.parse(url)
        except ValueError as exc:
            raise ValidationFailed(f"server: {exc}", hint=f"expected {inputs.SERVER_URL.text}") from None
        parts = urlsplit(given)
        assert parts.hostname is not None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.base}"


def normalize_server(url: str) -> str:
    """The canonical form of a server URL (the key of the token file): scheme and host lower case, no default
    port, no trailing slash."""
    return ServerAddress.parse(url).url


def second_factor() -> str | None:
    """RUNVOY_TOTP, in its documented form (read at each request: a code is valid for 30 s); a malformed one is
    refused without being repeated."""
    import os

    given = os.environ.get(TOTP_ENV, "").strip()
    if not given:
        return None
    from runvoy_core import inputs

    try:
        return str(inputs.TOTP_CODE.parse(given))
    except ValueError:
        raise ValidationFailed(
            f"{TOTP_ENV} is not a one-time password: {inputs.TOTP_CODE.text}",
            hint=f"set {TOTP_ENV} to the current code of your authenticator app, or unset it",
        ) from None


class Client:
    """Requests to one server. Safe to share between threads: each thread keeps its own connection."""

    def __init__(self, server: str, token: str | None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = ServerAddress.parse(server)
        self._token = token
        self.timeout = timeout
        self._local = threading.local()
        self._context: ssl.SSLContext | None = None

    @property
    def server(self) -> str:
        return self.address.url

    def __repr__(self) -> str:  # the token stays out of every representation
        return f"Client({self.server!r})"

    # -- connections -------------------------------------------------------------------------------------------
    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.address.scheme == "https":
            if self._context is None:
                self._context = ssl.create_default_context()
            return http.client.HTTPSConnection(
                self.address.host, self.address.port, timeout=timeout, context=self._context
            )
        return http.client.HTTPConnection(self.address.host, self.address.port, timeout=timeout)

    def _kept(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        used: float = getattr(self._local, "used", 0.0)
        if conn is not None and time.monotonic() - used > REUSE_IDLE:
            conn.close()
            conn = None
        if conn is None:
            conn = self._connect(self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        self._drop()

    def _headers(self, *, body: bool, accept: str) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if body:
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        code = second_factor()
        if code is not None:
            headers["X-Runvoy-TOTP"] = code
        return headers

    def _target(self, path: str, query: dict[str, Any] | None) -> str:
        target = self.address.base + path
        if query:
            pairs: list[tuple[str, str]] = []
            for key, value in query.items():
                if value is None:
                    continue
                for item in value if isinstance(value, list | tuple) else [value]:
                    pairs.append((key, _query_text(item)))
            if pairs:
                target += "?" + urlencode(pairs)
        return target

    def _unavailable(self, exc: BaseException) -> ServerUnavailable:
        return ServerUnavailable(f"cannot reach the runvoy server at {self.server}: {_reason(exc)}")

    # -- requests ----------------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer; an error answer raises the error it names."""
        payload = None if body is None else json.dumps(body).encode()
        target = self._target(path, query)
        headers = self._headers(body=payload is not None, accept="application/json")
        # only a request that cannot have done anything twice is sent again after a dropped connection
        attempts = 2 if method in ("GET", "HEAD") else 1
        for attempt in range(attempts):
            conn = self._kept()
            try:
                if timeout is not None and conn.sock is not None:
                    conn.sock.settimeout(timeout)
                elif timeout is not None:
                    conn.timeout = timeout
                conn.request(method, target, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                if attempt + 1 < attempts and isinstance(
                    exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                ):
                    continue
                raise self._unavailable(exc) from None
            finally:
                if conn.sock is not None:
                    conn.sock.settimeout(self.timeout)
                conn.timeout = self.timeout
            self._local.used = time.monotonic()
            if response.will_close:
                self._drop()
            return self._decode(response.status, response.getheader("Content-Type"), data)
        raise AssertionError("unreachable")

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        opened: Callable[[http.client.HTTPConnection], None] | None = None,
    ) -> Iterator[sse.Event]:
        """The events of an event-stream answer, each as soon as it arrives, on a connection of its own
        (closed when the iterator is closed; ``opened`` is given it, so that another thread can cut it with
        ``hang_up``). An error answer before the stream raises that error."""
        payload = None if body is None else json.dumps(body).encode()
        conn = self._connect(STREAM_READ_TIMEOUT)
        if opened is not None:
            opened(conn)
        try:
            try:
                conn.request(
                    method,
                    self._target(path, query),
                    body=payload,
                    headers=self._headers(body=payload is not None, accept=sse.MEDIA_TYPE),
                )
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise self._unavailable(exc) from None
            kind = (response.getheader("Content-Type") or "").split(";")[0].strip()
            if response.status >= 300 or kind != sse.MEDIA_TYPE:
                try:
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    raise self._unavailable(exc) from None
                self._decode(response.status, response.getheader("Content-Type"), data)
                raise ServerUnavailable(
                    f"the runvoy server at {self.server} answered {kind or 'nothing'} where an event stream "
                    "was expected"
                )
            try:
                yield from sse.read_events(_lines(response))
            except (OSError, http.client.HTTPException) as exc:
                raise self._unavailable(exc) from None
        finally:
            conn.close()

    def _decode(self, status: int, content_type: str | None, data: bytes) -> Any:
        kind = (content_type or "").split(";")[0].strip()
        decoded: Any = None
        if kind == "application/json" or kind.endswith("+json"):
            try:
                decoded = json.loads(data)
            except ValueError:
                decoded = None
        if status < 300 and kind == "application/json":
            return decoded
        if status >= 400 and isinstance(decoded, dict) and isinstance(decoded.get("error"), dict):
            raise error_from_body(decoded)
        if status == 204:
            return None
        raise ServerUnavailable(
            f"{self.server} answered HTTP {status} {_status_text(status)}, which is not an answer of "
            "runvoy's API",
            hint="check the server URL (runvoy config show, RUNVOY_SERVER) and that a runvoy server "
            "listens there (runvoy health)",
        )


def hang_up(conn: http.client.HTTPConnection) -> None:
    """End a connection another thread may be reading: the server sees the client go (a stream's run stops
    waiting for its lock), and the reader wakes with an error instead of waiting for the next byte."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    conn.close()


def error_from_body(body: dict[str, Any]) -> RunvoyError:
    """The exception a JSON error body stands for (the class its ``code`` names), with its message and hint."""
    error = body.get("error")
    if not isinstance(error, dict):
        return ServerUnavailable("the runvoy server sent an error without a description")
    code = str(error.get("code") or "runvoyerror")
    message = str(error.get("message") or "the runvoy server refused the request")
    hint = error.get("hint")
    cls = error_class(code)
    exc = cls.__new__(cls)
    RunvoyError.__init__(exc, message, hint=str(hint) if hint else None)
    request_id = error.get("request_id")
    if request_id:
        exc.details["request_id"] = str(request_id)
    return exc


MAX_EVENT_LINE = 16 << 20
"""The longest line of an event stream read (a log event's JSON); a longer one means a broken stream."""


def _lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        line = response.readline(MAX_EVENT_LINE + 1)
        if not line:
            return
        if len(line) > MAX_EVENT_LINE:
            raise http.client.LineTooLong("event stream line")
        yield line


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return text


def _status_text(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
