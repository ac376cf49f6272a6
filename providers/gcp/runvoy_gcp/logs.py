"""Logs from Cloud Logging (``entries.list``), and their archive in GCS.

Cloud Run writes each line of a job's stdout/stderr as one entry with
``resource.type="cloud_run_job"``, ``resource.labels.job_name`` and ``labels."run.googleapis.com/execution_name"``.
Entries come back ordered by timestamp, then insertId. The client library hands timestamps back with
microseconds only, so the cursor is (last microsecond, insertIds already returned within it): the next read
asks for ``timestamp >= that microsecond`` and drops those insertIds. No entry is lost or repeated, whatever
the page size, even when many lines share a timestamp.
"""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc

from runvoy_core.errors import TransientProviderError
from runvoy_core.models import LogEvent, LogPage
from runvoy_gcp.calls import translate, with_retry
from runvoy_gcp.clients import GcpClients
from runvoy_gcp.compute import parse_ref
from runvoy_gcp.config import GcpConfig

MAX_PAGE = 1000
_EPOCH = "1970-01-01T00:00:00Z"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_cursor(stamp: str, insert_ids: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"t": stamp, "ids": insert_ids}).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, list[str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(data["t"]), [str(i) for i in data["ids"]]
    except (ValueError, KeyError, TypeError):
        from runvoy_core.errors import UsageError

        raise UsageError("the log cursor is not one this provider returned") from None


def _stream(log_name: str | None) -> str:
    name = (log_name or "").lower()
    if name.endswith("stderr"):
        return "stderr"
    if name.endswith("stdout"):
        return "stdout"
    return "system"


def _message(payload: Any) -> str:
    if payload is None:
        return ""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return payload["message"]
    return json.dumps(payload, default=str, sort_keys=True)


class CloudLoggingLogs:
    def __init__(self, config: GcpConfig, clients: GcpClients, prefix: str = "") -> None:
        self.config = config
        self.clients = clients
        self.prefix = prefix

    def base_filter(self, ref: str) -> str:
        parts = parse_ref(ref)
        return (
            f'resource.type="cloud_run_job" AND resource.labels.job_name={_quote(parts["job"])} '
            f'AND labels."run.googleapis.com/execution_name"={_quote(parts["execution"])}'
        )

    def _fetch(self, project: str, filter_: str, count: int) -> list[Any]:
        from google.cloud.logging import ASCENDING

        def call() -> list[Any]:
            entries = self.clients.logging.list_entries(
                resource_names=[f"projects/{project}"],
                filter_=filter_,
                order_by=ASCENDING,
                page_size=min(count, MAX_PAGE),
                max_results=count,
            )
            # islice: the library's generator would otherwise fetch one more page before it stops
            return list(itertools.islice(entries, count))

        try:
            return with_retry(
                call,
                "read Cloud Logging",
                attempts=self.config.retry_attempts,
                backoff=self.config.retry_backoff,
            )
        except TransientProviderError:
            raise
        except gexc.GoogleAPICallError as exc:
            raise translate(exc, "read Cloud Logging") from None

    def read(
        self, ref: str, cursor: str | None = None, limit: int = 1000, pattern: str | None = None
    ) -> LogPage:
        project = parse_ref(ref)["project"]
        since, seen = decode_cursor(cursor) if cursor else (_EPOCH, [])
        filter_ = f"{self.base_filter(ref)} AND timestamp>={_quote(since)}"
        if pattern:
            # narrows server-side (case-insensitive there); the exact substring test is done below
            filter_ += f" AND textPayload:{_quote(pattern)}"
        limit = max(1, limit)
        entries = self._fetch(project, filter_, limit + len(seen))
        skip = set(seen)
        fresh = [e for e in entries if not (_stamp(e.timestamp) == since and e.insert_id in skip)][:limit]
        if not fresh:
            return LogPage(events=[], cursor=cursor)
        last = _stamp(fresh[-1].timestamp)
        ids = [e.insert_id for e in fresh if _stamp(e.timestamp) == last]
        if last == since:
            ids = seen + ids
        events = [
            LogEvent(timestamp=e.timestamp, stream=_stream(e.log_name), message=_message(e.payload))
            for e in fresh
        ]
        if pattern:
            events = [e for e in events if pattern in e.message]
        return LogPage(events=events, cursor=encode_cursor(last, ids))

    # -- archive -------------------------------------------------------------------------------------
    def archive_name(self, execution_id: str) -> str:
        return f"{self.prefix}logs/{execution_id}.jsonl"

    def archive(self, ref: str, execution_id: str) -> str:
        """Copy every log line of the execution to ``gs://BUCKET/<prefix>logs/<execution id>.jsonl`` (Cloud
        Logging keeps them 30 days by default). Returns the object's URI."""
        lines: list[str] = []
        cursor: str | None = None
        while True:
            page = self.read(ref, cursor, MAX_PAGE)
            lines.extend(e.model_dump_json() for e in page.events)
            if len(page.events) < MAX_PAGE:
                break
            cursor = page.cursor
        bucket = self.clients.storage.bucket(self.clients.bucket_name)
        blob = bucket.blob(self.archive_name(execution_id))
        data = ("\n".join(lines) + ("\n" if lines else "")).encode()
        try:
            with_retry(
                lambda: blob.upload_from_string(data, content_type="application/x-ndjson"),
                "archive logs to GCS",
                attempts=self.config.retry_attempts,
                backoff=self.config.retry_backoff,
            )
        except gexc.GoogleAPICallError as exc:
            raise translate(exc, "archive logs to GCS") from None
        return f"gs://{bucket.name}/{blob.name}"

    def read_archive(self, execution_id: str) -> list[LogEvent] | None:
        blob = self.clients.storage.bucket(self.clients.bucket_name).blob(self.archive_name(execution_id))
        try:
            data = blob.download_as_bytes()
        except gexc.NotFound:
            return None
        return [LogEvent.model_validate_json(line) for line in data.decode().splitlines() if line.strip()]
