"""The GCS store and lock register beyond the conformance suites: newest-first listing that reads only the
records it returns, generations as versions, no reliance on deletes, and writes whose answer was lost."""

from __future__ import annotations

import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from runvoy_gcp.objects import ObjectStore
from runvoy_gcp.store import GcsExecutionStore, index_stamp, stamp_time

from runvoy_core.errors import AlreadyExists, VersionConflict
from runvoy_core.models import Execution, ExecutionRequest, Status
from runvoy_core.ports import ExecutionQuery

BASE = datetime(2026, 3, 1, tzinfo=UTC)


def execution(n: int, status: Status = Status.SUCCEEDED) -> Execution:
    return Execution(
        id=f"{n:012x}",
        provider="gcp",
        request=ExecutionRequest(command="true"),
        status=status,
        created_at=BASE + timedelta(seconds=n),
    )


class CountingStore(GcsExecutionStore):
    """Counts record reads (each one is a real GET to fake-gcs-server)."""

    reads = 0

    def get(self, execution_id: str) -> Execution | None:
        self.reads += 1
        return super().get(execution_id)


def test_index_stamps_sort_newest_first() -> None:
    times = [BASE + timedelta(milliseconds=ms) for ms in (0, 1, 999, 1000, 86_400_000)]
    stamps = [index_stamp(t) for t in times]
    assert sorted(stamps) == list(reversed(stamps))
    assert all(len(s) == 13 for s in stamps)
    assert stamp_time(stamps[2]) == times[2]


def test_list_reads_only_the_records_it_returns(provider) -> None:
    store = CountingStore(ObjectStore(provider.config, provider.clients))
    for n in range(40):
        store.create(execution(n))
    store.reads = 0
    page = store.list(ExecutionQuery(limit=5))
    assert [e.id for e in page.executions] == [f"{n:012x}" for n in range(39, 34, -1)]
    assert store.reads == 5
    store.reads = 0
    since = store.list(ExecutionQuery(since=BASE + timedelta(seconds=37), limit=50))
    assert len(since.executions) == 3 and store.reads == 3  # the stamp in the index name stops the scan


def test_version_is_a_counter_and_the_cas_uses_the_generation(provider) -> None:
    store = provider.store
    created = store.create(execution(1, Status.PENDING))
    assert created.version == 1
    other_process = GcsExecutionStore(ObjectStore(provider.config, provider.clients))  # no cached generation
    seen = other_process.get(created.id)
    assert seen is not None
    first = store.update(created.model_copy(update={"status": Status.RUNNING}))
    assert first.version == 2
    with pytest.raises(VersionConflict):
        other_process.update(seen.model_copy(update={"status": Status.FAILED}))
    again = other_process.update(first.model_copy(update={"status": Status.SUCCEEDED}))
    assert again.version == 3
    with pytest.raises(AlreadyExists):
        store.create(execution(1))


def test_same_bytes_from_another_writer_are_not_taken_for_our_write(provider) -> None:
    objects = ObjectStore(provider.config, provider.clients)
    assert objects.create("x/one", b"same") is not None
    assert objects.create("x/one", b"same") is None
    generation = objects.read("x/one")[1]
    assert objects.replace("x/one", b"next", generation) is not None
    assert objects.replace("x/one", b"next", generation) is None


def test_lock_register_cas_and_released_records_stay(provider) -> None:
    locks = provider.locks
    assert locks.create_if_absent("team/deploy:prod", {"state": "held", "fence": 1})
    stored = locks.read("team/deploy:prod")
    assert stored is not None and stored.value["fence"] == 1
    assert locks.replace_if_version("team/deploy:prod", {"state": "released", "fence": 1}, stored.version)
    assert not locks.replace_if_version("team/deploy:prod", {"state": "held", "fence": 2}, stored.version)
    assert not locks.replace_if_version("team/deploy:prod", {"state": "held"}, "not-a-generation")
    assert not locks.replace_if_version("never-created", {"state": "held"}, "1")
    names = [name for name, _ in locks.list()]
    assert names == ["team/deploy:prod"]
    assert locks.read("team/deploy:prod").value["state"] == "released"


class _LosingProxy:
    """Forwards to fake-gcs-server; for the first N uploads it forwards the request and then answers 503,
    so the client never learns that the write happened (a lost answer)."""

    def __init__(self, target: str, lose: int) -> None:
        self.target = target
        self.lose = lose
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                request = urllib.request.Request(proxy.target + self.path, data=body, method=self.command)
                for key, value in self.headers.items():
                    if key.lower() not in ("host", "content-length", "connection"):
                        request.add_header(key, value)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, headers, data = response.status, response.headers, response.read()
                except urllib.error.HTTPError as exc:
                    status, headers, data = exc.code, exc.headers, exc.read()
                if self.command == "POST" and "/upload/" in self.path and proxy.lose > 0:
                    proxy.lose -= 1
                    status, data = 503, b'{"error": {"code": 503, "message": "lost"}}'
                    headers = {"Content-Type": "application/json"}
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def test_a_write_whose_answer_was_lost_still_counts_as_ours(provider, fake_gcs, gcp_config) -> None:
    from runvoy_gcp.provider import create_provider

    proxy = _LosingProxy(fake_gcs.endpoint, lose=0)
    flaky = create_provider(gcp_config.model_copy(update={"storage_endpoint": proxy.endpoint}), None)
    try:
        proxy.lose = 1
        assert flaky.locks.create_if_absent("lost-answer", {"owner": "me"})  # retried, 412, our token
        assert proxy.lose == 0
        stored = flaky.locks.read("lost-answer")
        proxy.lose = 1
        assert flaky.locks.replace_if_version("lost-answer", {"owner": "me", "n": 2}, stored.version)
        proxy.lose = 1
        record = execution(7)
        assert flaky.store.create(record).version == 1
        with pytest.raises(AlreadyExists):
            flaky.store.create(record)
    finally:
        flaky.close()
        proxy.server.shutdown()
