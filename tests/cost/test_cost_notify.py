"""The webhook notifier against a real HTTP server on 127.0.0.1: it reports failures and never raises."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runvoy_core.cost.notify import post_json
from runvoy_core.testing.waiting import DEADLINE

SLOW_ANSWER = threading.Event()
"""/slow answers only once this is set: the client's timeout surely comes first, however loaded the machine."""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({"path": self.path, "body": body, "agent": self.headers["User-Agent"]})
            if self.path == "/slow":
                SLOW_ANSWER.wait(DEADLINE)
            self.send_response(500 if self.path == "/fail" else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


def test_posts_json(server: tuple[str, list[dict[str, object]]]) -> None:
    url, received = server
    assert post_json(url + "/ok", {"budget": "b", "amount": "1.50"}) is True
    assert received[-1] == {
        "path": "/ok",
        "body": {"budget": "b", "amount": "1.50"},
        "agent": "runvoy-budget-notifier",
    }


def test_server_error_is_reported_not_raised(server: tuple[str, list[dict[str, object]]]) -> None:
    url, _ = server
    assert post_json(url + "/fail", {"x": 1}) is False


def test_timeout_is_short_and_not_raised(server: tuple[str, list[dict[str, object]]]) -> None:
    url, _ = server
    started = time.monotonic()
    try:
        assert post_json(url + "/slow", {"x": 1}, timeout=0.2) is False
        assert time.monotonic() - started < DEADLINE / 2  # the client gave up: the server never answered
    finally:
        SLOW_ANSWER.set()


def test_unreachable_and_bad_urls() -> None:
    assert post_json("http://127.0.0.1:9/", {"x": 1}, timeout=0.5) is False
    assert post_json("ftp://example.invalid/", {"x": 1}) is False
    assert post_json("not a url", {"x": 1}) is False
