"""Locks: a compare-and-swap register. The lease protocol over it lives once, in runvoy_core.locks."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable


class Versioned(NamedTuple):
    value: dict[str, Any]
    version: str
    """Opaque; changes on every successful write (a counter, an ETag, a GCS generation)."""


@runtime_checkable
class LockRegister(Protocol):
    def create_if_absent(self, name: str, value: dict[str, Any]) -> bool:
        """True if this call created the entry; False if it already existed."""

    def read(self, name: str) -> Versioned | None:
        """A strongly consistent read."""

    def replace_if_version(self, name: str, value: dict[str, Any], version: str) -> bool:
        """Write only if the stored version is still ``version``; True if written."""

    def list(self) -> list[tuple[str, Versioned]]: ...
