"""Logs: ACI's ``list_logs`` while the group exists, the Blob archive after.

``list_logs`` returns the whole log (up to ACI's size limit) with no cursor: every read fetches it with
timestamps and hands out only the lines after the cursor (see loglines.py). ``archive`` merges the last
full read into ``logs/<group>.log`` before the group is stopped or deleted; reads fall back to the archive
when the group is gone or its log is empty (ACI drops a stopped group's logs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from runvoy_azure import loglines
from runvoy_azure.archive import ArchiveConflict, BlobArchive
from runvoy_azure.clients import AzureClients, is_not_found, status_of
from runvoy_azure.config import AzureConfig
from runvoy_azure.names import split_ref
from runvoy_core.errors import TransientProviderError
from runvoy_core.models import LogEvent, LogPage
from runvoy_core.ratelimit import Retryable, RetryPolicy, retry_call

ARCHIVE_READ_ATTEMPTS = 3
# ACI answers a log read of a container that is not running yet (or any more) with a 4xx other than 404
NOT_READY = {400, 409}


def _gave_up(exc: BaseException) -> Retryable | None:
    if isinstance(exc, TransientProviderError):
        return Retryable(exc.message, throttled=False)
    return None


class AciLogs:
    def __init__(self, clients: AzureClients, config: AzureConfig, archive: BlobArchive) -> None:
        self._clients = clients
        self._config = config
        self._archive = archive

    # -- reading --------------------------------------------------------------------------------------------
    def _live(self, group_rg: str, name: str) -> str | None:
        """The group's log text; None when the group does not exist (any more)."""

        def call() -> str | None:
            try:
                logs = self._clients.aci.containers.list_logs(
                    group_rg,
                    name,
                    self._config.container_name,
                    timestamps=True,
                    read_timeout=self._config.request_timeout,
                    retry_total=0,
                )
            except Exception as exc:
                if is_not_found(exc):
                    return None
                if status_of(exc) in NOT_READY:
                    return ""  # the container has not started (or was deallocated): no log to read now
                raise
            return logs.content or ""

        return self._clients.arm_read(f"read the logs of container group {name}", call)

    def _text(self, ref: str) -> str:
        group_rg, name = split_ref(ref, self._config.resource_group)
        live = self._live(group_rg, name)
        if live:
            return live
        archived = self._archive.read_log(name)
        return archived[0] if archived else ""

    def read(
        self, ref: str, cursor: str | None = None, limit: int = 1000, pattern: str | None = None
    ) -> LogPage:
        lines = loglines.parse(self._text(ref))
        start = loglines.resume_index(lines, cursor)
        events: list[LogEvent] = []
        last = start - 1
        for index in range(start, len(lines)):
            if len(events) >= limit:
                break
            last = index
            line = lines[index]
            if pattern is None or pattern in line.message:
                events.append(LogEvent(timestamp=line.timestamp, stream="stdout", message=line.message))
        next_cursor = loglines.make_cursor(lines, last) if last >= start else cursor
        return LogPage(events=events, cursor=next_cursor)

    # -- archiving ------------------------------------------------------------------------------------------
    def archive(
        self, ref: str, execution_id: str | None = None, mask: Callable[[str], str] | None = None
    ) -> int:
        """Merge the group's current log into the archive blob; returns the number of archived lines.

        Called at finalize (before the group is deleted) and before a stop (ACI drops a stopped group's
        logs). A read that fails is retried; if it keeps failing the error propagates, and cleanup then
        keeps the group so that a later pass can archive it. ``mask`` hides the run's secrets in every line
        archived, those of an earlier archive included (decision 1901)."""
        group_rg, name = split_ref(ref, self._config.resource_group)
        live = self._read_live_with_retries(group_rg, name)
        for _ in range(5):
            existing = self._archive.read_log(name)
            archived_text, etag = existing if existing else ("", None)
            archived = loglines.parse(archived_text)
            merged = loglines.merge(archived, loglines.parse(live))
            if mask is not None:  # the cursor is the lines' stamps: masking their text keeps it
                merged = [replace(line, message=mask(line.message)) for line in merged]
            text = loglines.render(merged)
            unchanged = mask is None or text == archived_text
            if len(merged) == len(archived) and (existing is not None or live is None) and unchanged:
                return len(archived)  # nothing new (or no such group): write nothing
            metadata = {"group": name, "lines": str(len(merged))}
            if execution_id:
                metadata["execution_id"] = execution_id
            try:
                self._archive.write_log(name, text, etag, metadata)
            except ArchiveConflict:
                continue  # another finalizer wrote meanwhile: merge again on top of its version
            return len(merged)
        raise TransientProviderError(f"archiving the logs of {name} kept conflicting with another writer")

    def _read_live_with_retries(self, group_rg: str, name: str) -> str | None:
        """The archive is the last chance to keep a finished run's lines: a read that gave up is tried
        again (through the same core helper, on the same clock) before the group is kept for later."""
        return retry_call(
            lambda: self._live(group_rg, name),
            what=f"read the logs of container group {name} for the archive",
            classify=_gave_up,
            policy=RetryPolicy(attempts=ARCHIVE_READ_ATTEMPTS, base_delay=0.4, max_delay=2.0, total=30.0),
            clock=self._clients.clock,
        )

    def archived_text(self, ref: str) -> str | None:
        _, name = split_ref(ref, self._config.resource_group)
        found = self._archive.read_log(name)
        return found[0] if found else None

    def describe_location(self, ref: str) -> dict[str, Any]:
        group_rg, name = split_ref(ref, self._config.resource_group)
        return {
            "live": f"az container logs -g {group_rg} -n {name} --container-name {self._config.container_name}",
            "archive": f"{self._config.logs_container}/{BlobArchive.log_blob(name)}",
        }
