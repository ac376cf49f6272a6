"""Blob storage for what must outlive a container group: its full log and its final state.

Blobs in the logs container: ``logs/<group>.log`` (the timestamped log text as ACI returned it) and
``states/<group>.json`` (the TaskState seen just before the group was deleted). Writes are conditional
(ETag / create-only) so two finalizers never overwrite each other's lines.
"""

from __future__ import annotations

from typing import Any

from runvoy_azure.clients import AzureClients, azure_call, is_not_found
from runvoy_core.ports import TaskState


class ArchiveConflict(Exception):
    """Somebody else wrote the blob since it was read."""


class BlobArchive:
    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients

    def _container(self) -> Any:
        return self._clients.blobs.get_container_client(self._clients.config.logs_container)

    @staticmethod
    def log_blob(group: str) -> str:
        return f"logs/{group}.log"

    @staticmethod
    def state_blob(group: str) -> str:
        return f"states/{group}.json"

    def _read(self, blob: str) -> tuple[bytes, str] | None:
        client = self._container().get_blob_client(blob)
        with azure_call(f"read {blob} from blob storage"):
            try:
                downloader = client.download_blob()
                return downloader.readall(), downloader.properties.etag
            except Exception as exc:
                if is_not_found(exc):
                    return None
                raise

    def _write(self, blob: str, data: bytes, etag: str | None, metadata: dict[str, str]) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.storage.blob import ContentSettings

        client = self._container().get_blob_client(blob)
        conditions: dict[str, Any] = (
            {"etag": etag, "match_condition": MatchConditions.IfNotModified}
            if etag
            else {"match_condition": MatchConditions.IfMissing}
        )
        with azure_call(f"write {blob} to blob storage"):
            try:
                client.upload_blob(
                    data,
                    overwrite=True,
                    metadata=metadata,
                    content_settings=ContentSettings(content_type="text/plain; charset=utf-8"),
                    **conditions,
                )
            except (ResourceModifiedError, ResourceExistsError):
                raise ArchiveConflict(blob) from None

    def read_log(self, group: str) -> tuple[str, str] | None:
        found = self._read(self.log_blob(group))
        if found is None:
            return None
        data, etag = found
        return data.decode("utf-8", errors="replace"), etag

    def write_log(self, group: str, text: str, etag: str | None, metadata: dict[str, str]) -> None:
        self._write(self.log_blob(group), text.encode("utf-8"), etag, metadata)

    def read_state(self, group: str) -> TaskState | None:
        found = self._read(self.state_blob(group))
        return TaskState.model_validate_json(found[0]) if found else None

    def write_state(self, group: str, state: TaskState) -> None:
        from azure.storage.blob import ContentSettings

        client = self._container().get_blob_client(self.state_blob(group))
        with azure_call(f"write the final state of {group}"):
            client.upload_blob(
                state.model_dump_json().encode(),
                overwrite=True,
                content_settings=ContentSettings(content_type="application/json"),
            )
