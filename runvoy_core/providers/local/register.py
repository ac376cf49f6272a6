"""Lock registers in state.db: the LockRegister compare-and-swap port on SQLite.

Create is ``INSERT ... ON CONFLICT DO NOTHING`` and a swap is ``UPDATE ... WHERE name = ? AND version = ?``;
either succeeded iff it changed exactly one row. Both run under ``BEGIN IMMEDIATE`` (see db.write). Rows are
never deleted, so a name's version only grows and a stale version can never match again.

Also the core's fallback register for providers without one (locks then hold on this machine only).
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

from runvoy_core.lock_queue import QUEUE_SEPARATOR
from runvoy_core.ports.locks import Versioned
from runvoy_core.providers.local import db


class LocalLockRegister:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._state = db.ThreadConnections(self.home, db.STATE_DB)

    def close(self) -> None:
        self._state.close()

    def create_if_absent(self, name: str, value: dict[str, Any]) -> bool:
        conn = self._state.get()
        with db.write(conn):
            created = conn.execute(
                "INSERT INTO locks (name, version, value) VALUES (?, 1, ?) ON CONFLICT (name) DO NOTHING",
                (name, json.dumps(value)),
            ).rowcount
        return created == 1

    def read(self, name: str) -> Versioned | None:
        row = self._state.get().execute("SELECT value, version FROM locks WHERE name = ?", (name,)).fetchone()
        return None if row is None else Versioned(json.loads(row[0]), str(row[1]))

    def replace_if_version(self, name: str, value: dict[str, Any], version: str) -> bool:
        try:
            seen = int(version)
        except (TypeError, ValueError):
            return False
        conn = self._state.get()
        with db.write(conn):
            changed = conn.execute(
                "UPDATE locks SET value = ?, version = version + 1 WHERE name = ? AND version = ?",
                (json.dumps(value), name, seen),
            ).rowcount
        return changed == 1

    def list(self) -> list[tuple[str, Versioned]]:
        rows = self._state.get().execute("SELECT name, value, version FROM locks ORDER BY name").fetchall()
        return [(str(n), Versioned(json.loads(v), str(ver))) for n, v, ver in rows]

    def list_locks(self) -> builtins.list[tuple[str, Versioned]]:
        """The locks and their slots without the lock queues' tickets (``LockListing``): a lock's queue
        entries (``NAME~queue``, ``NAME~<n>``) sort together right after ``NAME~``, since every character a
        lock name may hold sorts before ``~``, so the walk along the primary key jumps past them — a lookup
        per lock with a queue, however many runs ever queued for it."""
        conn = self._state.get()
        found: builtins.list[tuple[str, Versioned]] = []
        after = ""
        while True:
            # read row by row: SQLite steps no further than the first queue entry, where the walk jumps
            cursor = conn.execute(
                "SELECT name, value, version FROM locks WHERE name > ? ORDER BY name", (after,)
            )
            try:
                for name, value, version in cursor:
                    if QUEUE_SEPARATOR in name:
                        after = name.split(QUEUE_SEPARATOR, 1)[0] + QUEUE_SEPARATOR + "\x7f"
                        break
                    found.append((str(name), Versioned(json.loads(value), str(version))))
                else:
                    return found
            finally:
                cursor.close()
