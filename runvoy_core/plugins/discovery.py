"""Finding the installed ``runvoy`` entry points, remembered between commands (decision 1411).

Every command loads the plugins, and asking ``importlib.metadata`` means importing it (and the email package
it parses METADATA with) and reading every installed distribution's files: more than the rest of a
``runvoy status``. What it finds changes only when something is installed or removed, which changes the
modification time of a directory on ``sys.path`` (installers add and delete ``*.dist-info`` directories
there). So the entry points are kept in a small JSON file next to the fingerprint they were read under —
each ``sys.path`` entry with its mtime — and read again only when the fingerprint differs.
"""

from __future__ import annotations

import importlib
import os
import sys
import zlib
from pathlib import Path
from typing import Any

import msgspec

CACHE_FORMAT = 1


class FoundEntryPoint:
    """One entry point: ``value`` is ``module`` or ``module:attribute``."""

    __slots__ = ("dist", "name", "value", "version")

    def __init__(self, name: str, value: str, dist: str | None, version: str | None) -> None:
        self.name, self.value, self.dist, self.version = name, value, dist, version

    def load(self) -> Any:
        module_name, _, attribute = self.value.partition(":")
        loaded: Any = importlib.import_module(module_name.strip())
        for part in attribute.split("[")[0].strip().split(".") if attribute else ():
            loaded = getattr(loaded, part)
        return loaded


def fingerprint() -> list[tuple[str, int]]:
    """Each directory (or zip) on sys.path with its modification time."""
    found = []
    for entry in sys.path:
        try:
            found.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            continue
    return found


def cache_file(cache_dir: Path, group: str) -> Path:
    # one file per interpreter environment and search path: two virtual environments never share an answer,
    # and `python -c` (whose path starts with "") and the console script do not overwrite each other's
    key = "\0".join([sys.prefix, sys.executable, group, *sys.path])
    # crc32, not a cryptographic hash: a collision only means the fingerprint inside does not match
    key = f"{zlib.crc32(key.encode()):08x}"
    return cache_dir / f"entry-points-{key}.json"


def find_entry_points(group: str, cache_dir: Path | None) -> list[FoundEntryPoint]:
    """The entry points of ``group``, from the cache when nothing was installed or removed since."""
    current = [list(item) for item in fingerprint()]
    path = cache_file(cache_dir, group) if cache_dir is not None else None
    if path is not None:
        try:
            cached = msgspec.json.decode(path.read_bytes())
            if cached.get("format") == CACHE_FORMAT and cached.get("fingerprint") == current:
                return [FoundEntryPoint(*item) for item in cached["entry_points"]]
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            pass  # absent, unreadable or from another version: read the metadata again
    found = _scan(group)
    if path is not None:
        _write(path, current, found)
    return found


def _scan(group: str) -> list[FoundEntryPoint]:
    from importlib import metadata

    found = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        found.append(FoundEntryPoint(ep.name, ep.value, dist, version))
    return found


def _write(path: Path, current: list[list[Any]], found: list[FoundEntryPoint]) -> None:
    body = msgspec.json.encode(
        {
            "format": CACHE_FORMAT,
            "fingerprint": current,
            "entry_points": [[ep.name, ep.value, ep.dist, ep.version] for ep in found],
        }
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_bytes(body)
        os.replace(temporary, path)  # readers see the old file or the new one, never half of one
    except OSError:
        pass  # a read-only home: discover again next time
