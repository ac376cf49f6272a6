"""An in-process document store (the ``DocumentStore`` port): the reference the kit's conformance suite is
written against, and a store for tests that need team state without a provider.

Values are kept as their encoded JSON text and decoded on every read, so a caller sees exactly what a real
store would give back (tuples become lists, no object shared with the caller)."""

from __future__ import annotations

import bisect
import itertools
import threading
from typing import Any

from runvoy_core.documents import (
    check_key,
    check_limit,
    check_namespace,
    check_prefix,
    decode_value,
    encode_value,
)
from runvoy_core.errors import AlreadyExists, ValidationFailed, VersionConflict
from runvoy_core.ports.optional import Document


def _check_version(version: object) -> None:
    # any text may be a version (opaque); anything else is a caller's bug, refused like a bad key
    if not isinstance(version, str):
        raise ValidationFailed(f"invalid document version {version!r}: the text a read returned")


class MemoryDocumentStore:
    """Strongly consistent documents in a dict behind one lock. Versions come from one counter for the
    whole store, so a version is never handed out twice (a rewrite of the same value is no ABA)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, tuple[str, str]]] = {}
        # each namespace's keys kept sorted, so a page is a bisect and a slice, not a sort of everything
        self._keys: dict[str, list[str]] = {}
        self._versions = itertools.count(1)
        self.writes = 0

    def _next_version(self) -> str:
        return str(next(self._versions))

    def get_document(self, namespace: str, key: str) -> Document | None:
        check_namespace(namespace)
        check_key(key)
        with self._lock:
            entry = self._data.get(namespace, {}).get(key)
        if entry is None:
            return None
        return Document(key, decode_value(entry[0]), entry[1])

    def put_document(
        self, namespace: str, key: str, value: dict[str, Any], *, version: str | None = None
    ) -> Document:
        check_namespace(namespace)
        check_key(key)
        if version is not None:
            _check_version(version)
        text = encode_value(value)
        with self._lock:
            documents = self._data.setdefault(namespace, {})
            current = documents.get(key)
            if version is None:
                if current is not None:
                    raise AlreadyExists(f"document {namespace}/{key} exists already")
                bisect.insort(self._keys.setdefault(namespace, []), key)
            elif current is None or current[1] != version:
                raise VersionConflict(f"document {namespace}/{key} is not at version {version}")
            new_version = self._next_version()
            documents[key] = (text, new_version)
            self.writes += 1
        return Document(key, decode_value(text), new_version)

    def delete_document(self, namespace: str, key: str, *, version: str) -> None:
        check_namespace(namespace)
        check_key(key)
        _check_version(version)
        with self._lock:
            documents = self._data.get(namespace, {})
            current = documents.get(key)
            if current is None or current[1] != version:
                raise VersionConflict(f"document {namespace}/{key} is not at version {version}")
            del documents[key]
            keys = self._keys[namespace]
            del keys[bisect.bisect_left(keys, key)]
            self.writes += 1

    def list_documents(
        self, namespace: str, *, prefix: str = "", after: str | None = None, limit: int = 100
    ) -> list[Document]:
        check_namespace(namespace)
        check_prefix(prefix)
        if after is not None:
            check_key(after, what="after key")
        check_limit(limit)
        page: list[tuple[str, str, str]] = []
        with self._lock:
            keys = self._keys.get(namespace, [])
            documents = self._data.get(namespace, {})
            start = bisect.bisect_left(keys, prefix)
            if after is not None:
                start = max(start, bisect.bisect_right(keys, after))
            for key in itertools.islice(keys, start, None):
                if not key.startswith(prefix) or len(page) == limit:
                    break
                text, version = documents[key]
                page.append((key, text, version))
        return [Document(key, decode_value(text), version) for key, text, version in page]
