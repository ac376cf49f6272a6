"""Namespaced JSON documents (``runvoy_core.ports.optional.DocumentStore``) as GCS objects.

    <prefix>documents/<namespace>/<key>    the value as JSON; version = the object's generation

Keys are printable ASCII, which GCS takes as object names as they are, and a listing returns names in byte
order: the order the port promises, with no escaping. A value of at most ``_META_MAX`` ASCII characters also
rides in the object's metadata, so a listing page needs no GET for it.

A delete writes a tombstone (an empty object marked ``runvoy-deleted``) under ``if_generation_match``
instead of deleting: fake-gcs-server, like some proxies, ignores delete preconditions (decision 0604), and
a compare-and-swap must not rest on what an emulator skips. A create over a tombstone replaces it under its
generation. Tombstones are never listed nor read back, and their generation is never handed out
(docs/decisions/1504-gcp-documents.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from runvoy_core.documents import (
    check_key,
    check_limit,
    check_namespace,
    check_prefix,
    decode_value,
    encode_value,
)
from runvoy_core.errors import AlreadyExists, TransientProviderError, VersionConflict
from runvoy_core.ports.optional import Document

if TYPE_CHECKING:
    from runvoy_gcp.objects import Listed, ObjectStore

FOLDER = "documents/"
VALUE_META = "runvoy-value"
DELETED_META = "runvoy-deleted"
_META_MAX = 4000  # custom metadata is capped at 8 KiB an object (the write token shares it)
CREATE_ATTEMPTS = 8
"""Creates over a tombstone that lost to another writer before giving up (each loss means someone else
wrote the document meanwhile: the next read almost always says it exists)."""


def document_name(namespace: str, key: str) -> str:
    return f"{FOLDER}{namespace}/{key}"


def _metadata(text: str) -> dict[str, str] | None:
    # ASCII only: metadata travels as HTTP headers on some paths, and a listing must decode it unchanged
    return {VALUE_META: text} if len(text) <= _META_MAX and text.isascii() else None


def _generation(version: object) -> int | None:
    """The generation a version token names; None for a token no write of this store handed out (0 would
    turn a replace into a create; a generation is a positive 64-bit integer)."""
    if isinstance(version, str) and version.isascii() and version.isdigit() and version[0] != "0":
        generation = int(version)
        if generation < 2**63:
            return generation
    return None


class GcsDocuments:
    """The document methods of ``GcsExecutionStore`` (mixed in: the core checks the store with
    ``isinstance``)."""

    objects: ObjectStore

    def _pool(self) -> ThreadPoolExecutor:
        raise NotImplementedError

    def get_document(self, namespace: str, key: str) -> Document | None:
        check_namespace(namespace)
        check_key(key)
        found = self.objects.read(document_name(namespace, key))
        if found is None or not found[0]:
            return None
        return Document(key, decode_value(found[0]), str(found[1]))

    def put_document(
        self, namespace: str, key: str, value: dict[str, Any], *, version: str | None = None
    ) -> Document:
        check_namespace(namespace)
        check_key(key)
        text = encode_value(value)
        name = document_name(namespace, key)
        data, metadata = text.encode(), _metadata(text)
        if version is not None:
            generation = _generation(version)
            written = None if generation is None else self.objects.replace(name, data, generation, metadata)
            if written is None:
                raise VersionConflict(f"document {namespace}/{key} is not at version {version}")
            return Document(key, decode_value(text), str(written))
        for _ in range(CREATE_ATTEMPTS):
            written = self.objects.create(name, data, metadata)
            if written is None:
                found = self.objects.read(name)
                if found is not None and found[0]:
                    raise AlreadyExists(f"document {namespace}/{key} exists already")
                if found is not None:  # a tombstone: taken over under its generation
                    written = self.objects.replace(name, data, found[1], metadata)
            if written is not None:
                return Document(key, decode_value(text), str(written))
        raise TransientProviderError(
            f"document {namespace}/{key} kept changing during {CREATE_ATTEMPTS} creates"
        )

    def delete_document(self, namespace: str, key: str, *, version: str) -> None:
        check_namespace(namespace)
        check_key(key)
        generation = _generation(version)
        name = document_name(namespace, key)
        if generation is None or self.objects.replace(name, b"", generation, {DELETED_META: "1"}) is None:
            raise VersionConflict(f"document {namespace}/{key} is not at version {version}")

    def list_documents(
        self, namespace: str, *, prefix: str = "", after: str | None = None, limit: int = 100
    ) -> list[Document]:
        """One listing call a page (tombstones only make it read on); a GET only for the values too large
        for the metadata, in parallel."""
        check_namespace(namespace)
        check_prefix(prefix)
        if after is not None:
            check_key(after, what="after key")
        check_limit(limit)
        folder = document_name(namespace, "")
        listed = self.objects.listing(
            folder + prefix,
            start_offset=folder + after if after is not None else None,
            page_size=limit,
            metadata=True,
        )
        found: list[Document] = []
        entries = _live(listed, len(folder), after)
        while len(found) < limit:
            batch = [entry for _, entry in zip(range(limit - len(found)), entries, strict=False)]
            if not batch:
                break
            found.extend(d for d in self._pool().map(self._listed_document, batch) if d is not None)
        return found

    def _listed_document(self, entry: tuple[str, Listed]) -> Document | None:
        key, listed = entry
        text = listed.metadata.get(VALUE_META)
        if text is not None:
            return Document(key, decode_value(text), str(listed.generation))
        found = self.objects.read(listed.name)
        if found is None or not found[0]:  # deleted since the listing
            return None
        return Document(key, decode_value(found[0]), str(found[1]))


def _live(listed: Iterator[Listed], skip: int, after: str | None) -> Iterator[tuple[str, Listed]]:
    for entry in listed:
        key = entry.name[skip:]
        if (after is not None and key <= after) or entry.metadata.get(DELETED_META):
            continue
        yield key, entry
