"""A fake of the Cloud Logging v2 REST API (entries.list and entries.write), validated against
logging.v2.json. Entries are ordered by timestamp, then insertId, as the real API documents.

``FakeCloudLogging.quota`` models the read quota (60 ``entries.list`` per minute per project): once a
project made ``limit`` calls in the last ``window`` seconds of the server's clock, a call is refused with
429 RESOURCE_EXHAUSTED and a ``Retry-After`` saying when the oldest of them leaves the window."""

from __future__ import annotations

import base64
import itertools
import json
import math
import threading
from collections import deque
from typing import Any

from .discovery import DiscoveryValidator, MatchedMethod
from .logging_filter import compile_filter, parse_instant
from .server import ApiError, GoogleApiServer, rfc3339

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


class LogStore:
    """Entries kept per project, each with its sort key (timestamp as an instant, insertId)."""

    def __init__(self) -> None:
        self._entries: dict[str, list[tuple[tuple[tuple[int, int], str], dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count(1)

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            entry = dict(entry)
            entry.setdefault("insertId", f"{next(self._seq):016x}")
            entry.setdefault("receiveTimestamp", entry["timestamp"])
            project = entry["logName"].split("/")[1]
            self._entries.setdefault(project, []).append((_sort_key(entry), entry))
            return entry

    def append_line(
        self,
        *,
        project: str,
        job: str,
        location: str,
        execution: str,
        stream: str,
        timestamp: float,
        text: str,
    ) -> dict[str, Any]:
        """An entry as Cloud Run writes one line of a job's stdout/stderr."""
        return self.append(
            {
                "logName": f"projects/{project}/logs/run.googleapis.com%2F{stream}",
                "resource": {
                    "type": "cloud_run_job",
                    "labels": {"job_name": job, "location": location, "project_id": project},
                },
                "labels": {
                    "run.googleapis.com/execution_name": execution,
                    "run.googleapis.com/task_index": "0",
                    "run.googleapis.com/task_attempt": "0",
                    "instanceId": "fake-instance",
                },
                "textPayload": text,
                "timestamp": rfc3339(timestamp),
                "severity": "ERROR" if stream == "stderr" else "DEFAULT",
            }
        )

    def snapshot(self, projects: set[str] | None = None) -> list[dict[str, Any]]:
        return [entry for _, entry in self.keyed(projects)]

    def keyed(self, projects: set[str] | None = None) -> list[tuple[Any, dict[str, Any]]]:
        with self._lock:
            names = projects if projects is not None else set(self._entries)
            return [item for name in names for item in self._entries.get(name, [])]

    def expire(self, project: str) -> None:
        """Drop a project's entries, as retention does after 30 days."""
        with self._lock:
            self._entries.pop(project, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class WindowQuota:
    """At most ``limit`` calls per project in any ``window`` seconds (a sliding window: stricter than the
    per-minute buckets the real quota counts in, so a client that passes here passes there)."""

    def __init__(self, limit: int = 60, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self.refused = 0
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, project: str, now: float) -> None:
        with self._lock:
            calls = self._calls.setdefault(project, deque())
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if len(calls) >= self.limit:
                self.refused += 1
                wait = max(1, math.ceil(calls[0] + self.window - now))
                raise ApiError(
                    429,
                    "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' "
                    f"of service 'logging.googleapis.com' for consumer 'project_number:{project}'.",
                    "RESOURCE_EXHAUSTED",
                    headers={"Retry-After": str(wait)},
                )
            calls.append(now)


def _sort_key(entry: dict[str, Any]) -> tuple[tuple[int, int], str]:
    return parse_instant(entry["timestamp"]), entry["insertId"]


class FakeCloudLogging:
    def __init__(self, store: LogStore | None = None) -> None:
        self.store = store or LogStore()
        self.validator = DiscoveryValidator("logging.v2.json")
        self.quota: WindowQuota | None = None
        self.server = GoogleApiServer(
            [self.validator],
            {
                "logging.entries.list": self._list,
                "logging.entries.write": self._write,
            },
        )

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def start(self) -> FakeCloudLogging:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def _list(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        body = body or {}
        names = body.get("resourceNames") or []
        if not names:
            raise ApiError(400, "resourceNames: at least one resource name is required")
        projects = set()
        for name in names:
            if not name.startswith("projects/") or name.count("/") != 1:
                raise ApiError(400, f"resourceNames: only projects/PROJECT is supported by this fake: {name}")
            projects.add(name.split("/", 1)[1])
        if self.quota is not None:
            for project in sorted(projects):
                self.quota.check(project, self.server.clock.monotonic())
        order = (body.get("orderBy") or "timestamp asc").strip().lower()
        if order not in ("timestamp asc", "timestamp desc"):
            raise ApiError(400, f"orderBy: invalid value {order!r}")
        size = int(body.get("pageSize") or DEFAULT_PAGE_SIZE)
        if size < 0:
            raise ApiError(400, "pageSize must not be negative")
        size = min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        predicate = compile_filter(body.get("filter"))
        entries = [
            e for e in self.store.snapshot() if e["logName"].split("/")[1] in projects and predicate(e)
        ]
        descending = order.endswith("desc")
        entries.sort(key=_sort_key, reverse=descending)
        token = body.get("pageToken")
        if token:
            try:
                after = json.loads(base64.urlsafe_b64decode(token))
                last = ((after[0], after[1]), after[2])
            except (ValueError, IndexError, TypeError):
                raise ApiError(400, "pageToken: invalid page token") from None
            entries = [e for e in entries if (_sort_key(e) < last if descending else _sort_key(e) > last)]
        page = entries[:size]
        result: dict[str, Any] = {"entries": page}
        if len(entries) > size:
            (sec, nanos), insert_id = _sort_key(page[-1])
            result["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps([sec, nanos, insert_id]).encode()
            ).decode()
        return result

    def _write(self, method: MatchedMethod, query: dict[str, list[str]], body: Any) -> Any:
        body = body or {}
        for entry in body.get("entries") or []:
            merged = {
                "logName": entry.get("logName") or body.get("logName"),
                "resource": entry.get("resource") or body.get("resource") or {"type": "global"},
                "labels": {**(body.get("labels") or {}), **(entry.get("labels") or {})},
                "timestamp": entry.get("timestamp") or rfc3339(__import__("time").time()),
            }
            if not merged["logName"]:
                raise ApiError(400, "logName is required")
            for key in ("textPayload", "jsonPayload", "severity", "insertId"):
                if key in entry:
                    merged[key] = entry[key]
            self.store.append(merged)
        return {}
