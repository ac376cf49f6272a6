"""Logs from CloudWatch (the awslogs driver's stream ``{prefix}/{container}/{task id}``).

The cursor is GetLogEvents' ``nextForwardToken``, opaque to the core, or ``rv1:<token>:<n>`` when a page
was cut short (a filtered read scans 1,000 events per call but returns at most ``limit``): re-read the
page at ``token`` and skip ``n`` events. End of stream: the token comes back unchanged. A stream that does
not exist yet (the task has not written) reads as an empty page. ``pattern`` is a plain substring, matched
client side (CloudWatch filter patterns are term-based, not substrings).
``archive`` copies the whole stream to S3 after the run's final read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from runvoy_aws.clients import AwsClients, aws_call, bexc, error_code
from runvoy_aws.compute import task_id
from runvoy_aws.config import AwsConfig
from runvoy_aws.quotas import GET_LOG_EVENTS
from runvoy_core.models import LogEvent, LogPage

MAX_EVENTS = 10_000  # GetLogEvents' own cap per call
EMPTY_PAGE_FOLLOWS = 20  # empty pages with a moving token to skip before reporting "nothing new"
FILTER_PAGE = 1000  # events scanned per call by a filtered read
CURSOR_PREFIX = "rv1:"  # a cursor pointing into a page: rv1:<forward token>:<events already returned>


class CloudWatchLogs:
    def __init__(
        self,
        logs_client: Any,
        s3_client_factory: Any,
        config: AwsConfig,
        clients: AwsClients | None = None,
    ) -> None:
        self._logs = logs_client
        self._s3_factory = s3_client_factory
        self._config = config
        self._clients = clients
        """When given, reads keep to GetLogEvents' quota through its bucket (quotas.py)."""

    def stream_name(self, ref: str) -> str:
        return f"{self._config.log_stream_prefix}/{self._config.container_name}/{task_id(ref)}"

    def read(
        self, ref: str, cursor: str | None = None, limit: int = 1000, pattern: str | None = None
    ) -> LogPage:
        limit = max(1, min(limit, MAX_EVENTS))
        token, skip = _parse_cursor(cursor)
        # a filtered read scans bigger pages than it returns; the cursor then may point into a page
        raw_limit = min((FILTER_PAGE if pattern is not None else limit) + skip, MAX_EVENTS)
        empty_follows = 0
        while True:
            answer = self._get(ref, token, raw_limit)
            if answer is None:
                return LogPage(events=[], cursor=cursor)
            raw = answer.get("events", [])
            next_token = answer.get("nextForwardToken") or token
            matched: list[LogEvent] = []
            for position in range(skip, len(raw)):
                event = _event(raw[position])
                if pattern is not None and pattern not in event.message:
                    continue
                matched.append(event)
                if len(matched) == limit:
                    consumed = position + 1
                    if consumed < len(raw):
                        return LogPage(events=matched, cursor=_compose_cursor(token, consumed))
                    return LogPage(events=matched, cursor=next_token)
            if matched:
                return LogPage(events=matched, cursor=next_token)
            if next_token == token:
                # the end of the stream (the token came back unchanged): resume right here
                if raw:
                    return LogPage(events=[], cursor=_compose_cursor(token, len(raw)))
                return LogPage(events=[], cursor=token if token is not None else cursor)
            if not raw:
                # an empty page whose token moved (a time gap) is not the end; never spin forever on it
                empty_follows += 1
                if empty_follows > EMPTY_PAGE_FOLLOWS:
                    return LogPage(events=[], cursor=next_token)
            token, skip = next_token, 0

    def _get(self, ref: str, token: str | None, limit: int) -> dict[str, Any] | None:
        kwargs: dict[str, Any] = {
            "logGroupName": self._config.log_group,
            "logStreamName": self.stream_name(ref),
            "startFromHead": True,
            "limit": limit,
        }
        if token:
            kwargs["nextToken"] = token

        def call() -> dict[str, Any] | None:
            try:
                return dict(self._logs.get_log_events(**kwargs))
            except bexc.ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return None  # the stream appears with the container's first line
                raise

        if self._clients is None:
            with aws_call("read CloudWatch logs"):
                return call()
        return self._clients.read(GET_LOG_EVENTS, "read CloudWatch logs", call)

    def archive(self, ref: str, execution_id: str, mask: Callable[[str], str] | None = None) -> str | None:
        """Copy the whole stream to ``s3://bucket/logs/<execution id>.log``; the S3 URI, or None when no
        bucket is configured. ``mask`` hides the run's secrets in each line (decision 1901)."""
        bucket = self._config.bucket
        if not bucket:
            return None
        lines: list[str] = []
        cursor: str | None = None
        while True:
            page = self.read(ref, cursor, limit=MAX_EVENTS)
            for event in page.events:
                message = event.message if mask is None else mask(event.message)
                lines.append(f"{event.timestamp.isoformat().replace('+00:00', 'Z')} {message}")
            if not page.events or page.cursor == cursor:
                break
            cursor = page.cursor
        key = f"logs/{execution_id}.log"
        body = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
        with aws_call("archive logs to S3"):
            self._s3_factory().put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="text/plain; charset=utf-8",
                Metadata={"runvoy-execution-id": execution_id, "runvoy-task": ref},
            )
        return f"s3://{bucket}/{key}"


def _parse_cursor(cursor: str | None) -> tuple[str | None, int]:
    if cursor is None or not cursor.startswith(CURSOR_PREFIX):
        return cursor, 0
    token, _, skip = cursor[len(CURSOR_PREFIX) :].rpartition(":")
    return (token or None), int(skip or 0)


def _compose_cursor(token: str | None, skip: int) -> str:
    return f"{CURSOR_PREFIX}{token or ''}:{skip}" if skip else (token or "")


def _event(raw: dict[str, Any]) -> LogEvent:
    timestamp = datetime.fromtimestamp(int(raw.get("timestamp", 0)) / 1000, tz=UTC)
    return LogEvent(timestamp=timestamp, stream="stdout", message=str(raw.get("message", "")).rstrip("\n"))
