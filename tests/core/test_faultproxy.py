"""The fault proxy against a small HTTP/1.1 server: what passes, what each fault does, and that a seed
decides the same faults every time."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runvoy_core.testing.faultproxy import (
    Chaos,
    FaultProxy,
    aws_dialect,
    azure_storage_dialect,
    google_dialect,
)


class Upstream:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.connections: set[tuple[str, int]] = set()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                if "chunked" in self.headers.get("Transfer-Encoding", ""):
                    body = b""
                    while size := int(self.rfile.readline().strip(), 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.seen.append((self.command, self.path, body))
                upstream.connections.add(self.client_address)
                if self.path == "/stream":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for part in (b"one,", b"two,", b"three"):
                        self.wfile.write(b"%x\r\n%b\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                answer = b"echo:" + body
                self.send_response(201)
                self.send_header("Content-Length", str(len(answer)))
                self.send_header("X-Kept", "yes")
                self.end_headers()
                self.wfile.write(answer)

            do_PUT = do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _proxy(upstream: Upstream, **probabilities: float) -> FaultProxy:
    return FaultProxy(upstream.url, Chaos(seed=7, probabilities=probabilities), name="t").start()


def test_requests_pass_through_on_one_kept_alive_connection(upstream: Upstream) -> None:
    proxy = _proxy(upstream)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        for i in range(3):
            conn.request("POST", f"/x?i={i}", body=b"hello %d" % i)
            response = conn.getresponse()
            assert (response.status, response.read()) == (201, b"echo:hello %d" % i)
            assert response.getheader("X-Kept") == "yes"
        conn.close()
        assert [s[1] for s in upstream.seen] == ["/x?i=0", "/x?i=1", "/x?i=2"]
        assert len(upstream.connections) == 1  # the proxy kept its upstream connection alive too
    finally:
        proxy.stop()


def test_chunked_bodies_stream_through_both_ways(upstream: Upstream) -> None:
    proxy = _proxy(upstream)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("POST", "/stream", body=iter([b"abc", b"defg"]), encode_chunked=True)
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == b"one,two,three"
        assert upstream.seen[-1][2] == b"abcdefg"
    finally:
        proxy.stop()


def test_a_lost_answer_reaches_the_server_but_not_the_client(upstream: Upstream) -> None:
    proxy = _proxy(upstream, lost_answer=1.0)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("PUT", "/create", body=b"x")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            conn.getresponse()
        assert upstream.seen == [("PUT", "/create", b"x")]
        assert proxy.chaos.counts() == {"lost_answer": 1}
    finally:
        proxy.stop()


@pytest.mark.parametrize("fault", ["drop", "reset"])
def test_drop_and_reset_never_reach_the_server(upstream: Upstream, fault: str) -> None:
    proxy = _proxy(upstream, **{fault: 1.0})
    try:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("POST", "/x", body=b"x")
        expected = ConnectionResetError if fault == "reset" else http.client.RemoteDisconnected
        with pytest.raises(expected):
            conn.getresponse()
        assert upstream.seen == []
    finally:
        proxy.stop()


def test_error_answers_speak_the_service_dialect(upstream: Upstream) -> None:
    chaos = Chaos(seed=1, probabilities={"503": 1.0})
    proxies = [
        FaultProxy(upstream.url, chaos, name=n, dialect=d).start()
        for n, d in (("aws", aws_dialect), ("gcp", google_dialect), ("blob", azure_storage_dialect))
    ]
    try:
        answers = []
        for proxy, content_type in zip(
            proxies, ["application/x-amz-json-1.1", "application/json", "application/xml"], strict=True
        ):
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
            conn.request("POST", "/x", body=b"{}", headers={"Content-Type": content_type})
            response = conn.getresponse()
            answers.append((response.status, response.getheader("x-ms-error-code"), response.read()))
        assert json.loads(answers[0][2])["__type"] == "ServiceUnavailable"
        assert json.loads(answers[1][2])["error"]["status"] == "UNAVAILABLE"
        assert answers[2][1] == "ServerBusy" and b"<Code>ServerBusy</Code>" in answers[2][2]
        assert {a[0] for a in answers} == {503} and upstream.seen == []
    finally:
        for proxy in proxies:
            proxy.stop()


def test_a_seed_decides_the_same_faults_and_can_be_switched_off() -> None:
    probabilities = {"delay": 0.1, "drop": 0.1, "500": 0.1, "lost_answer": 0.1, "reset": 0.1}
    runs = []
    for _ in range(2):
        chaos = Chaos(seed=42, probabilities=probabilities)
        runs.append([chaos.decide("p", "GET", f"/{i}").fault for i in range(200)])
    assert runs[0] == runs[1]
    assert {f for f in runs[0] if f} == {"delay", "drop", "500", "lost_answer", "reset"}
    chaos = Chaos(seed=42, probabilities=probabilities, enabled=False)
    assert all(chaos.decide("p", "GET", "/").fault is None for _ in range(100))
    with pytest.raises(ValueError, match="unknown faults"):
        Chaos(seed=1, probabilities={"explode": 0.1})
