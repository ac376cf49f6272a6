"""Execution records and their event history in state.db (the StorePort on SQLite).

Also the core's fallback store for providers that keep no records of their own.
"""

from __future__ import annotations

import builtins
import heapq
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runvoy_core.errors import AlreadyExists, UsageError, ValidationFailed, VersionConflict
from runvoy_core.models import Execution, StatusChange
from runvoy_core.ports.store import ExecutionPage, ExecutionQuery
from runvoy_core.providers.local import db

if TYPE_CHECKING:
    from runvoy_core.cost.rollups import RollupRow
    from runvoy_core.ports.optional import Document


def _sortable(ts: datetime) -> str:
    """UTC with a fixed width, so that text order is time order."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_Rows = list[tuple[str, str, str]]
"""(created_at, id, data) of a page's rows (an alias: ``list`` is a method of the store)."""
_Buckets = list["RollupRow"]
_Strings = list[str]


def _check_version(version: object) -> None:
    # any text may be a version (opaque: a wrong one is a conflict); anything else is a caller's bug
    if not isinstance(version, str):
        raise ValidationFailed(f"invalid document version {version!r}: the text a read returned")


def _next_document_version(conn: Any) -> int:
    row = conn.execute(
        "INSERT INTO meta (key, value) VALUES ('document_version', '1')"
        " ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value"
    ).fetchone()
    return int(row[0])


class LocalStore:
    """The StorePort on state.db; also ``CostRollups`` and ``CostTotals`` (the cost_* tables: decisions 1401,
    1404), counted in the transaction that writes a run's final record, and ``DocumentStore`` (the documents
    table: decision 1502)."""

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
            if inserted == 1 and stored.request.labels:
                conn.executemany(
                    "INSERT OR REPLACE INTO execution_labels (execution_id, key, value, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    [
                        (stored.id, k, v, _sortable(stored.created_at))
                        for k, v in stored.request.labels.items()
                    ],
                )
            if inserted == 1 and stored.status.is_terminal:
                self._count_ended(conn, stored)
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
            else:
                if stored.request.labels:
                    # the labels' copy of created_at follows the record's, or the label index would misorder
                    conn.execute(
                        "UPDATE execution_labels SET created_at = ? WHERE execution_id = ? AND created_at <> ?",
                        (_sortable(stored.created_at), stored.id, _sortable(stored.created_at)),
                    )
                if stored.status.is_terminal:
                    self._count_ended(conn, stored)
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
        """Newest first, one keyset page. Every filter reads an index in the page's order, so a page costs
        the same however many runs are stored: a label filter reads that label's rows, a status filter that
        status's rows (one ordered read per status, merged)."""
        limit = max(1, query.limit)
        after: tuple[str, str] | None = None
        if query.cursor:
            created, sep, last_id = query.cursor.partition("|")
            if not sep:
                raise UsageError(f"invalid list cursor {query.cursor!r}")
            after = (created, last_id)
        since = None if query.since is None else _sortable(query.since)
        statuses = sorted(s.value for s in query.statuses) if query.statuses else None
        if query.labels:
            rows = self._list_by_label(query.labels, statuses, since, after, limit + 1)
        elif statuses:
            # one ordered index read per status; the newest limit + 1 of their union is the page
            reads = [self._list_newest(status, since, after, limit + 1) for status in statuses]
            rows = list(heapq.merge(*reads, key=lambda r: (r[0], r[1]), reverse=True))[: limit + 1]
        else:
            rows = self._list_newest(None, since, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        executions = [Execution.model_validate_json(data) for _, _, data in rows]
        cursor = f"{rows[-1][0]}|{rows[-1][1]}" if more and rows else None
        return ExecutionPage(executions=executions, cursor=cursor)

    def _list_newest(
        self, status: str | None, since: str | None, after: tuple[str, str] | None, limit: int
    ) -> _Rows:
        # INDEXED BY: SQLite refuses the query rather than silently fall back to a scan
        where: _Strings = []
        params: builtins.list[Any] = []
        if status is not None:
            sql = "SELECT created_at, id, data FROM executions INDEXED BY executions_by_status"
            where.append("status = ?")
            params.append(status)
        else:
            sql = "SELECT created_at, id, data FROM executions INDEXED BY executions_newest"
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        if after is not None:
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params.extend([after[0], after[0], after[1]])
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        return [tuple(r) for r in self._state.get().execute(sql, (*params, limit)).fetchall()]

    def _list_by_label(
        self,
        labels: dict[str, str],
        statuses: _Strings | None,
        since: str | None,
        after: tuple[str, str] | None,
        limit: int,
    ) -> _Rows:
        (key, value), *others = sorted(labels.items())
        where = ["l.key = ?", "l.value = ?"]
        params: builtins.list[Any] = [key, value]
        if since is not None:
            where.append("l.created_at >= ?")
            params.append(since)
        if after is not None:
            where.append("(l.created_at < ? OR (l.created_at = ? AND l.execution_id < ?))")
            params.extend([after[0], after[0], after[1]])
        if statuses:
            where.append(f"e.status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        for other_key, other_value in others:
            # label keys are restricted to [a-z0-9_.:/-], so quoting them in the JSON path is safe
            where.append(f"json_extract(e.data, '$.request.labels.\"{other_key}\"') = ?")
            params.append(other_value)
        # CROSS JOIN keeps the label index as the outer loop: rows come in page order, read until the page fills
        sql = (
            "SELECT l.created_at, l.execution_id, e.data FROM execution_labels AS l"
            " INDEXED BY execution_labels_newest CROSS JOIN executions AS e ON e.id = l.execution_id"
            f" WHERE {' AND '.join(where)} ORDER BY l.created_at DESC, l.execution_id DESC LIMIT ?"
        )
        return [tuple(r) for r in self._state.get().execute(sql, (*params, limit)).fetchall()]

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

    # -- documents (DocumentStore, decision 1502) ----------------------------------------------------------
    # runvoy_core.documents and ports.optional are imported on first use: they pull in re and json, which a
    # run on the local provider never needs
    def get_document(self, namespace: str, key: str) -> Document | None:
        from runvoy_core import documents as docs
        from runvoy_core.ports.optional import Document

        docs.check_namespace(namespace)
        docs.check_key(key)
        row = (
            self._state.get()
            .execute("SELECT value, version FROM documents WHERE namespace = ? AND key = ?", (namespace, key))
            .fetchone()
        )
        return None if row is None else Document(key, docs.decode_value(row[0]), str(row[1]))

    def put_document(
        self, namespace: str, key: str, value: dict[str, Any], *, version: str | None = None
    ) -> Document:
        from runvoy_core import documents as docs
        from runvoy_core.ports.optional import Document

        docs.check_namespace(namespace)
        docs.check_key(key)
        if version is not None:
            _check_version(version)
        text = docs.encode_value(value)
        conn = self._state.get()
        # the version counter and the write in one write transaction: a lost race rolls the counter back
        # too, and BEGIN IMMEDIATE serialises writers across processes (replicas sharing this state.db)
        with db.write(conn):
            new_version = _next_document_version(conn)
            if version is None:
                written = conn.execute(
                    "INSERT INTO documents (namespace, key, version, value) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (namespace, key) DO NOTHING",
                    (namespace, key, new_version, text),
                ).rowcount
                if written != 1:
                    raise AlreadyExists(f"document {namespace}/{key} exists already")
            else:
                # compared as text: only the exact text handed out matches (an INTEGER column would
                # otherwise take "07" for 7)
                written = conn.execute(
                    "UPDATE documents SET version = ?, value = ?"
                    " WHERE namespace = ? AND key = ? AND CAST(version AS TEXT) = ?",
                    (new_version, text, namespace, key, version),
                ).rowcount
                if written != 1:
                    raise VersionConflict(f"document {namespace}/{key} is not at version {version}")
        return Document(key, docs.decode_value(text), str(new_version))

    def delete_document(self, namespace: str, key: str, *, version: str) -> None:
        from runvoy_core import documents as docs

        docs.check_namespace(namespace)
        docs.check_key(key)
        _check_version(version)
        conn = self._state.get()
        with db.write(conn):
            deleted = conn.execute(
                "DELETE FROM documents WHERE namespace = ? AND key = ? AND CAST(version AS TEXT) = ?",
                (namespace, key, version),
            ).rowcount
        if deleted != 1:
            raise VersionConflict(f"document {namespace}/{key} is not at version {version}")

    def list_documents(
        self, namespace: str, *, prefix: str = "", after: str | None = None, limit: int = 100
    ) -> builtins.list[Document]:
        from runvoy_core import documents as docs
        from runvoy_core.ports.optional import Document

        docs.check_namespace(namespace)
        docs.check_prefix(prefix)
        if after is not None:
            docs.check_key(after, what="after key")
        docs.check_limit(limit)
        # keys are 0x21-0x7e, so exactly the keys that start with the prefix sort in [prefix, prefix + 0x7f);
        # the primary key's BINARY collation is byte order
        lower, strict = (prefix, False) if after is None or after < prefix else (after, True)
        rows = (
            self._state.get()
            .execute(
                "SELECT key, value, version FROM documents WHERE namespace = ?"
                f" AND key {'>' if strict else '>='} ? AND key < ? ORDER BY key LIMIT ?",
                (namespace, lower, prefix + "\x7f", limit),
            )
            .fetchall()
        )
        return [Document(key, docs.decode_value(value), str(version)) for key, value, version in rows]

    # -- cost rollups (CostRollups) ------------------------------------------------------------------------
    def add_to_rollups(self, execution: Execution) -> bool:
        """Count an ended execution into its hour bucket; False when this id was already counted."""
        if not execution.status.is_terminal:
            raise ValueError(f"execution {execution.id} has not ended: only ended runs are counted")
        from runvoy_core.providers.local import costs

        conn = self._state.get()
        with db.write(conn):
            return costs.count_ended(conn, execution)

    def _count_ended(self, conn: Any, execution: Execution) -> None:
        # in the transaction that writes the terminal record: the record and its count never disagree
        from runvoy_core.providers.local import costs

        costs.count_ended(conn, execution)

    def count_missing_costs(self) -> builtins.list[str]:
        """Count the ended runs missing from the rollups (none, unless someone edited state.db: a run is
        counted with its final record); their ids. For ``runvoy reconcile``, without parsing every record."""
        from runvoy_core.providers.local import costs

        return costs.count_uncounted(self._state.get())

    def rollups(self, since: datetime, until: datetime | None = None) -> _Buckets:
        """Every bucket whose hour is >= the hour of ``since`` (and < ``until``); whole days come as day rows
        (``costs.read_rollups``)."""
        from runvoy_core.providers.local import costs

        return costs.read_rollups(self._state.get(), since, until)

    def cost_totals(self, since: datetime) -> _Buckets:
        """One row per bucket identity: what its runs that ended since the hour of ``since`` cost (``CostTotals``)."""
        from runvoy_core.providers.local import costs

        return costs.read_cost_totals(self._state.get(), since)

    def day_totals(self, since: datetime) -> _Buckets:
        """One row per day and provider since the hour of ``since`` (``CostTotals``)."""
        from runvoy_core.providers.local import costs

        return costs.read_day_totals(self._state.get(), since)
