"""Logs from Cloud Logging (``entries.list``), and their archive in GCS.

Cloud Run writes each line of a job's stdout/stderr as one entry with ``resource.type="cloud_run_job"``,
``resource.labels.job_name`` and ``labels."run.googleapis.com/execution_name"``. Entries come back ordered by
timestamp, then insertId, so the cursor is the last (timestamp, insertId) returned, kept as the exact string
the API sent (nanoseconds included): the next read asks for
``timestamp > T OR (timestamp = T AND insertId > I)``. No entry is lost or repeated, whatever the page size,
even when many lines share one timestamp.

The entries are read through the google-cloud-logging client's JSON connection, not its ``list_entries``
iterator: that iterator truncates timestamps to microseconds and, for each log name it meets, builds a
Logger that probes the GCE metadata server (a multi-second stall off Google Cloud). See
docs/decisions/0602-gcp-logs-cursor.md.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from runvoy_core.errors import TransientProviderError, UsageError
from runvoy_core.models import LogEvent, LogPage
from runvoy_gcp.calls import translate, with_retry
from runvoy_gcp.clients import GcpClients
from runvoy_gcp.compute import parse_ref
from runvoy_gcp.config import GcpConfig
from runvoy_gcp.quotas import LOGGING_READS

MAX_PAGE = 1000  # the API's largest pageSize
ARCHIVE_CURSOR = "archive:"
_RFC3339 = re.compile(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_cursor(timestamp: str, insert_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([timestamp, insert_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        timestamp, insert_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(timestamp), str(insert_id)
    except (ValueError, TypeError):
        raise UsageError("the log cursor is not one this provider returned") from None


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 with up to nine fraction digits (datetime keeps six)."""
    m = _RFC3339.match(text)
    if m is None:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    fraction = (m.group(2) or "")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) in ("Z", "z") else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{fraction}{zone}")


def _stream(log_name: str | None) -> str:
    name = (log_name or "").lower()
    if name.endswith("stderr"):
        return "stderr"
    if name.endswith("stdout"):
        return "stdout"
    return "system"


def _message(entry: dict[str, Any]) -> str:
    if "textPayload" in entry:
        return str(entry["textPayload"])
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return str(payload["message"])
    if payload is not None:
        return json.dumps(payload, sort_keys=True)
    return ""


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

    def list_raw(self, body: dict[str, Any]) -> dict[str, Any]:
        """One ``entries:list`` call; the JSON answer as it came."""
        connection = self.clients.logging._connection

        def call() -> dict[str, Any]:
            return dict(
                connection.api_request(
                    method="POST", path="/entries:list", data=body, timeout=self.config.request_timeout
                )
            )

        names = body.get("resourceNames") or []
        project = str(names[0]).removeprefix("projects/") if names else None
        try:
            return with_retry(
                call,
                "read Cloud Logging",
                attempts=self.config.retry_attempts,
                backoff=self.config.retry_backoff,
                bucket=self.clients.limiter(LOGGING_READS, project),
                clock=self.clients.clock,
            )
        except TransientProviderError:
            raise
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError) as exc:
            raise translate(exc, "read Cloud Logging") from None

    def read_entries(
        self, ref: str, cursor: str | None, limit: int, pattern: str | None
    ) -> list[dict[str, Any]]:
        """Raw entries after ``cursor`` (oldest first, at most ``limit``)."""
        project = parse_ref(ref)["project"]
        # an explicit timestamp term: the client library adds "the last 24 hours" to a filter without one
        filter_ = self.base_filter(ref)
        if cursor:
            stamp, insert_id = decode_cursor(cursor)
            filter_ += f" AND (timestamp>{_quote(stamp)} OR (timestamp={_quote(stamp)} AND insertId>{_quote(insert_id)}))"
        else:
            filter_ += ' AND timestamp>="1970-01-01T00:00:00Z"'
        if pattern:
            # narrows server-side (where ':' ignores case); the exact substring test is done by read()
            filter_ += f" AND textPayload:{_quote(pattern)}"
        entries: list[dict[str, Any]] = []
        token: str | None = None
        while len(entries) < limit:
            body: dict[str, Any] = {
                "resourceNames": [f"projects/{project}"],
                "filter": filter_,
                "orderBy": "timestamp asc",
                "pageSize": min(limit - len(entries), MAX_PAGE),
            }
            if token:
                body["pageToken"] = token
            response = self.list_raw(body)
            entries.extend(response.get("entries") or [])
            token = response.get("nextPageToken")
            if not token:
                break
        return entries[:limit]

    def read(
        self, ref: str, cursor: str | None = None, limit: int = 1000, pattern: str | None = None
    ) -> LogPage:
        limit = max(1, limit)
        if cursor is not None and cursor.startswith(ARCHIVE_CURSOR):
            return self._read_archived(ref, cursor, limit, pattern)
        while True:
            entries = self.read_entries(ref, cursor, limit, pattern)
            if not entries:
                if cursor is None:
                    # nothing in Cloud Logging: past its retention, the archive may still have the lines
                    archived = self._read_archived(ref, None, limit, pattern)
                    if archived.events or archived.cursor is not None:
                        return archived
                return LogPage(events=[], cursor=cursor)
            cursor = encode_cursor(entries[-1]["timestamp"], entries[-1]["insertId"])
            events = [
                LogEvent(
                    timestamp=parse_timestamp(e["timestamp"]),
                    stream=_stream(e.get("logName")),
                    message=_message(e),
                )
                for e in entries
            ]
            if pattern:
                events = [e for e in events if pattern in e.message]
            # a page whose lines all failed the exact pattern test would look like the end: read on
            if events or len(entries) < limit:
                return LogPage(events=events, cursor=cursor)

    def _read_archived(self, ref: str, cursor: str | None, limit: int, pattern: str | None) -> LogPage:
        offset = int(cursor[len(ARCHIVE_CURSOR) :]) if cursor else 0
        pointer = self._get(self.pointer_name(ref))
        archived = self.read_archive(pointer.decode()) if pointer is not None else None
        if archived is None:
            return LogPage(events=[], cursor=cursor)
        page = archived[offset : offset + limit]
        next_cursor = f"{ARCHIVE_CURSOR}{offset + len(page)}" if page or cursor else None
        if pattern:
            page = [e for e in page if pattern in e.message]
        return LogPage(events=page, cursor=next_cursor)

    # -- archive -------------------------------------------------------------------------------------
    def archive_name(self, execution_id: str) -> str:
        return f"{self.prefix}logs/{execution_id}.jsonl"

    def pointer_name(self, ref: str) -> str:
        """Names the archive of a Cloud Run execution (reads know the ref, not the runvoy id)."""
        parts = parse_ref(ref)
        return f"{self.prefix}logs/by-execution/{parts['location']}/{parts['job']}/{parts['execution']}"

    def _get(self, name: str) -> bytes | None:
        blob = self.clients.storage.bucket(self.clients.bucket_name).blob(name)
        try:
            return bytes(
                with_retry(
                    blob.download_as_bytes,
                    "read the log archive",
                    attempts=self.config.retry_attempts,
                    backoff=self.config.retry_backoff,
                    clock=self.clients.clock,
                )
            )
        except gexc.NotFound:
            return None
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError) as exc:
            raise translate(exc, "read the log archive") from None

    def archive(self, ref: str, execution_id: str, mask: Callable[[str], str] | None = None) -> str:
        """Copy every log line of the execution to ``gs://BUCKET/<prefix>logs/<execution id>.jsonl`` (Cloud
        Logging keeps them 30 days by default); later reads of the ref fall back to it. Returns the URI.
        ``mask`` hides the run's secrets in each line (decision 1901)."""
        lines: list[str] = []
        cursor: str | None = None
        while True:
            page = self.read(ref, cursor, MAX_PAGE)
            if cursor is None and page.cursor is not None and page.cursor.startswith(ARCHIVE_CURSOR):
                return (
                    f"gs://{self.clients.bucket_name}/{self.archive_name(execution_id)}"  # already archived
                )
            events = (
                page.events
                if mask is None
                else [e.model_copy(update={"message": mask(e.message)}) for e in page.events]
            )
            lines.extend(e.model_dump_json() for e in events)
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
                clock=self.clients.clock,
            )
            pointer = bucket.blob(self.pointer_name(ref))
            with_retry(
                lambda: pointer.upload_from_string(execution_id.encode(), content_type="text/plain"),
                "archive logs to GCS",
                attempts=self.config.retry_attempts,
                backoff=self.config.retry_backoff,
                clock=self.clients.clock,
            )
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError) as exc:
            raise translate(exc, "archive logs to GCS") from None
        return f"gs://{bucket.name}/{blob.name}"

    def read_archive(self, execution_id: str) -> list[LogEvent] | None:
        data = self._get(self.archive_name(execution_id))
        if data is None:
            return None
        return [LogEvent.model_validate_json(line) for line in data.decode().splitlines() if line.strip()]
