"""Execution records and their event history in state.db (the StorePort on SQLite).

Also the core's fallback store for providers that keep no records of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runvoy_core.errors import AlreadyExists, UsageError, VersionConflict
from runvoy_core.models import Execution, StatusChange
from runvoy_core.ports.store import ExecutionPage, ExecutionQuery
from runvoy_core.providers.local import db


def _sortable(ts: datetime) -> str:
    """UTC with a fixed width, so that text order is time order."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LocalStore:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._state = db.ThreadConnections(self.home, db.STATE_DB)

    def close(self) -> None:
        self._state.close()

    def create(self, execution: Execution) -> Execution:
        stored = execution.model_copy(update={"version": 1})
        conn = self._state.get()
        with db.write(conn):
            inserted = conn.execute(
                "INSERT INTO executions (id, created_at, status, version, data) VALUES (?, ?, ?, 1, ?) "
                "ON CONFLICT (id) DO NOTHING",
                (stored.id, _sortable(stored.created_at), stored.status.value, stored.model_dump_json()),
            ).rowcount
        if inserted != 1:
            raise AlreadyExists(f"execution {execution.id} already exists")
        return stored

    def get(self, execution_id: str) -> Execution | None:
        row = (
            self._state.get().execute("SELECT data FROM executions WHERE id = ?", (execution_id,)).fetchone()
        )
        return None if row is None else Execution.model_validate_json(row[0])

    def update(self, execution: Execution) -> Execution:
        stored = execution.model_copy(update={"version": execution.version + 1})
        conn = self._state.get()
        with db.write(conn):
            changed = conn.execute(
                "UPDATE executions SET status = ?, version = ?, data = ?, created_at = ? "
                "WHERE id = ? AND version = ?",
                (
                    stored.status.value,
                    stored.version,
                    stored.model_dump_json(),
                    _sortable(stored.created_at),
                    stored.id,
                    execution.version,
                ),
            ).rowcount
            if changed != 1:
                row = conn.execute("SELECT version FROM executions WHERE id = ?", (execution.id,)).fetchone()
        if changed != 1:
            if row is None:
                raise VersionConflict(
                    f"execution {execution.id} does not exist", hint="create it before updating it"
                )
            raise VersionConflict(
                f"execution {execution.id} changed meanwhile (stored version {row[0]}, "
                f"written from version {execution.version})"
            )
        return stored

    def list(self, query: ExecutionQuery) -> ExecutionPage:
        where: list[str] = []
        params: list[Any] = []
        if query.statuses:
            where.append(f"status IN ({', '.join('?' for _ in query.statuses)})")
            params.extend(sorted(s.value for s in query.statuses))
        if query.since is not None:
            where.append("created_at >= ?")
            params.append(_sortable(query.since))
        for key, value in sorted(query.labels.items()):
            # label keys are restricted to [a-z0-9_.:/-], so quoting them in the JSON path is safe
            where.append(f"json_extract(data, '$.request.labels.\"{key}\"') = ?")
            params.append(value)
        if query.cursor:
            created, sep, last_id = query.cursor.partition("|")
            if not sep:
                raise UsageError(f"invalid list cursor {query.cursor!r}")
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params.extend([created, created, last_id])
        sql = "SELECT created_at, id, data FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        limit = max(1, query.limit)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        rows = self._state.get().execute(sql, (*params, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        executions = [Execution.model_validate_json(data) for _, _, data in rows]
        cursor = f"{rows[-1][0]}|{rows[-1][1]}" if more and rows else None
        return ExecutionPage(executions=executions, cursor=cursor)

    def resolve_prefix(self, prefix: str, limit: int = 2) -> Sequence[str]:
        if not prefix:
            return []
        rows = (
            self._state.get()
            .execute(
                "SELECT id FROM executions WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                (prefix, prefix + "\U0010ffff", limit),
            )
            .fetchall()
        )
        return [str(r[0]) for r in rows]

    def append_event(self, execution_id: str, change: StatusChange) -> None:
        conn = self._state.get()
        with db.write(conn):
            conn.execute(
                "INSERT INTO events (execution_id, data) VALUES (?, ?)",
                (execution_id, change.model_dump_json()),
            )

    def events(self, execution_id: str) -> Sequence[StatusChange]:
        rows = self._state.get().execute(
            "SELECT data FROM events WHERE execution_id = ? ORDER BY seq", (execution_id,)
        )
        return [StatusChange.model_validate_json(r[0]) for r in rows]
