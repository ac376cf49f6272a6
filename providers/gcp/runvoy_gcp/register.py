"""The lock compare-and-swap register on GCS: ``<prefix>locks/<name>.json``, version = object generation.
Created with ``if_generation_match=0``, replaced with ``if_generation_match=<generation>``; a released lock
stays as an object (its fence must survive), so nothing is ever deleted."""

from __future__ import annotations

import json
from typing import Any

from runvoy_core.ports import Versioned
from runvoy_gcp.objects import ObjectStore


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


class GcsLockRegister:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @staticmethod
    def _name(name: str) -> str:
        return f"locks/{name}.json"

    def create_if_absent(self, name: str, value: dict[str, Any]) -> bool:
        return self.objects.create(self._name(name), _encode(value)) is not None

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
        return self.objects.replace(self._name(name), _encode(value), generation) is not None

    def list(self) -> list[tuple[str, Versioned]]:
        result = []
        for object_name in self.objects.names("locks/"):
            if not object_name.endswith(".json"):
                continue
            name = object_name[len("locks/") : -len(".json")]
            found = self.read(name)
            if found is not None:
                result.append((name, found))
        return result
