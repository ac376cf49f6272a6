"""The lock compare-and-swap register on GCS: ``<prefix>locks/<name>.json``, version = object generation.
Created with ``if_generation_match=0``, replaced with ``if_generation_match=<generation>``; a released lock
stays as an object (its fence must survive), so nothing is ever deleted.

Every write also puts the value into the object's custom metadata (when it fits), which a listing returns
with the generation: ``list`` is one listing call per thousand entries and no GET per lock (decision 0608).
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from runvoy_core.lock_queue import QUEUE_SEPARATOR
from runvoy_core.ports import Versioned
from runvoy_gcp.objects import Listed, ObjectStore

_VALUE_META = "runvoy-value"
_VALUE_META_MAX = 6000  # custom metadata is capped at 8 KiB an object; a larger value is read from the body


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def _metadata(data: bytes) -> dict[str, str] | None:
    return {_VALUE_META: data.decode()} if len(data) <= _VALUE_META_MAX else None


class GcsLockRegister:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @staticmethod
    def _name(name: str) -> str:
        return f"locks/{name}.json"

    def create_if_absent(self, name: str, value: dict[str, Any]) -> bool:
        data = _encode(value)
        return self.objects.create(self._name(name), data, _metadata(data)) is not None

    def read(self, name: str) -> Versioned | None:
        found = self.objects.read(self._name(name))
        if found is None:
            return None
        return Versioned(json.loads(found[0]), str(found[1]))

    def replace_if_version(self, name: str, value: dict[str, Any], version: str) -> bool:
        try:
            generation = int(version)
        except ValueError:
            return False
        if generation <= 0:
            return False
        data = _encode(value)
        return self.objects.replace(self._name(name), data, generation, _metadata(data)) is not None

    def list(self) -> list[tuple[str, Versioned]]:
        result = []
        for listed in self.objects.listing("locks/", page_size=1000, metadata=True):
            entry = self._entry(listed)
            if entry is not None:
                result.append(entry)
        return result

    def list_locks(self) -> builtins.list[tuple[str, Versioned]]:
        """The locks and their slots without the lock queues' tickets (``LockListing``): listed with ``~``
        as the delimiter, GCS folds every ``NAME~...`` queue entry of a lock into one prefix, so this is one
        listing of the locks however many runs ever queued for them."""
        result: builtins.list[tuple[str, Versioned]] = []
        for listed in self.objects.listing(
            "locks/", page_size=1000, metadata=True, delimiter=QUEUE_SEPARATOR
        ):
            entry = self._entry(listed)
            if entry is not None:
                result.append(entry)
        return result

    def _entry(self, listed: Listed) -> tuple[str, Versioned] | None:
        if not listed.name.endswith(".json"):
            return None
        name = listed.name[len("locks/") : -len(".json")]
        text = listed.metadata.get(_VALUE_META)
        if text is not None and listed.generation:
            # the value and the generation come from the same object version: one upload wrote both
            return name, Versioned(json.loads(text), str(listed.generation))
        return (name, found) if (found := self.read(name)) is not None else None  # older or larger value
