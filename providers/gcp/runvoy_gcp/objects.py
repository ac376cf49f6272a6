"""GCS objects as a compare-and-swap store: create-only (``if_generation_match=0``) and generation-matched
writes; the generation is the version. Deletes are never conditional (fake-gcs-server, like some proxies,
ignores delete preconditions), so nothing here relies on them.

A conditional write retried by the client library after a lost answer can see 412 although the first try
succeeded. Every write therefore carries a random token in the object's metadata; after a 412 the stored
object's token tells whether the write that is there is ours (identical bytes are not proof: two writers
may write the same value).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from google.api_core import exceptions as gexc

from runvoy_core.errors import ProviderError, TransientProviderError
from runvoy_gcp.calls import translate, with_retry
from runvoy_gcp.clients import GcpClients
from runvoy_gcp.config import GcpConfig

T = TypeVar("T")
WRITE_TOKEN = "runvoy-write"


class ObjectStore:
    def __init__(self, config: GcpConfig, clients: GcpClients) -> None:
        self.config = config
        self.clients = clients
        self.prefix = config.bucket_prefix

    @property
    def bucket(self) -> Any:
        return self.clients.storage.bucket(self.clients.bucket_name)

    def _call(self, fn: Callable[[], T], what: str) -> T:
        try:
            return with_retry(
                fn, what, attempts=self.config.retry_attempts, backoff=self.config.retry_backoff
            )
        except TransientProviderError:
            raise
        except (gexc.NotFound, gexc.PreconditionFailed):
            raise
        except gexc.GoogleAPICallError as exc:
            raise translate(exc, what) from None

    def missing_bucket(self) -> ProviderError:
        return ProviderError(
            f"GCS bucket {self.clients.bucket_name!r} does not exist",
            hint="create it with: runvoy setup --provider gcp   (or set providers.gcp.bucket)",
        )

    def read(self, name: str) -> tuple[bytes, int] | None:
        blob = self.bucket.blob(self.prefix + name)
        try:
            data = self._call(blob.download_as_bytes, f"read gs://{self.clients.bucket_name}/{blob.name}")
        except gexc.NotFound:
            return None
        return data, int(blob.generation)

    def _write(self, name: str, data: bytes, generation: int) -> int | None:
        blob = self.bucket.blob(self.prefix + name)
        token = secrets.token_hex(8)
        blob.metadata = {WRITE_TOKEN: token}
        try:
            self._call(
                lambda: blob.upload_from_string(
                    data, content_type="application/json", if_generation_match=generation
                ),
                f"write gs://{self.clients.bucket_name}/{blob.name}",
            )
        except gexc.NotFound:
            if generation == 0:
                raise self.missing_bucket() from None
            return None
        except gexc.PreconditionFailed:
            try:
                current = self._call(
                    lambda: self.bucket.get_blob(self.prefix + name),
                    f"read gs://{self.clients.bucket_name}/{name}",
                )
            except gexc.NotFound:
                return None
            if current is not None and (current.metadata or {}).get(WRITE_TOKEN) == token:
                return int(current.generation)
            return None
        return int(blob.generation)

    def create(self, name: str, data: bytes) -> int | None:
        """The new generation, or None if the object already existed."""
        return self._write(name, data, 0)

    def replace(self, name: str, data: bytes, generation: int) -> int | None:
        """The new generation, or None if the stored generation is no longer ``generation``."""
        return self._write(name, data, generation)

    def names(self, prefix: str, *, start_offset: str | None = None, page_size: int = 200) -> Iterator[str]:
        """Object names under ``prefix`` (without the store prefix), in lexicographic order."""
        full = self.prefix + prefix
        kwargs: dict[str, Any] = {"prefix": full, "page_size": page_size}
        if start_offset:
            kwargs["start_offset"] = self.prefix + start_offset
        iterator = self.clients.storage.list_blobs(self.clients.bucket_name, **kwargs)
        pages = iterator.pages
        while True:
            try:
                page = self._call(lambda: next(pages), "list GCS objects")
            except StopIteration:
                return
            except gexc.NotFound:
                raise self.missing_bucket() from None
            for blob in page:
                yield blob.name[len(self.prefix) :]
