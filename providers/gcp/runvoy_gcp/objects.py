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
from typing import Any, NamedTuple, TypeVar

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from runvoy_core.errors import ProviderError, TransientProviderError
from runvoy_gcp.calls import translate, with_retry
from runvoy_gcp.clients import GcpClients
from runvoy_gcp.config import GcpConfig

T = TypeVar("T")


class Listed(NamedTuple):
    name: str
    """Without the store's prefix."""
    metadata: dict[str, str]
    generation: int
    """0 when the listing did not ask for it."""


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
        except (gexc.GoogleAPICallError, auth_exc.GoogleAuthError) as exc:
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

    def _write(
        self, name: str, data: bytes, generation: int, metadata: dict[str, str] | None = None
    ) -> int | None:
        blob = self.bucket.blob(self.prefix + name)
        token = secrets.token_hex(8)
        blob.metadata = {**(metadata or {}), WRITE_TOKEN: token}
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

    def create(self, name: str, data: bytes, metadata: dict[str, str] | None = None) -> int | None:
        """The new generation, or None if the object already existed. ``metadata`` is returned by listings,
        so what a listing needs can be read without a GET per object."""
        return self._write(name, data, 0, metadata)

    def replace(
        self, name: str, data: bytes, generation: int, metadata: dict[str, str] | None = None
    ) -> int | None:
        """The new generation, or None if the stored generation is no longer ``generation``."""
        return self._write(name, data, generation, metadata)

    def delete(self, name: str) -> None:
        """Unconditional (see the module's docstring): only for objects whose loss a reader tolerates."""
        blob = self.bucket.blob(self.prefix + name)
        try:
            self._call(blob.delete, f"delete gs://{self.clients.bucket_name}/{blob.name}")
        except gexc.NotFound:
            pass

    def names(self, prefix: str, *, start_offset: str | None = None, page_size: int = 200) -> Iterator[str]:
        """Object names under ``prefix`` (without the store prefix), in lexicographic order."""
        for listed in self.listing(prefix, start_offset=start_offset, page_size=page_size):
            yield listed.name

    def listing(
        self,
        prefix: str,
        *,
        start_offset: str | None = None,
        end_offset: str | None = None,
        page_size: int = 200,
        metadata: bool = False,
        delimiter: str | None = None,
    ) -> Iterator[Listed]:
        """The objects under ``prefix`` in lexicographic order, ``start_offset`` <= name < ``end_offset``,
        one list call per ``page_size`` names (fetched only as the caller goes on); ``metadata``: with
        their custom metadata and generation; ``delimiter``: without the objects whose name has it after
        ``prefix`` (GCS answers those as one prefix each, which this leaves out)."""
        full = self.prefix + prefix
        fields = "items(name,metadata,generation),nextPageToken" if metadata else "items(name),nextPageToken"
        kwargs: dict[str, Any] = {"prefix": full, "page_size": min(max(page_size, 1), 1000), "fields": fields}
        if delimiter:
            kwargs["delimiter"] = delimiter
        if start_offset:
            kwargs["start_offset"] = self.prefix + start_offset
        if end_offset:
            kwargs["end_offset"] = self.prefix + end_offset
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
                yield Listed(
                    blob.name[len(self.prefix) :], dict(blob.metadata or {}), int(blob.generation or 0)
                )
