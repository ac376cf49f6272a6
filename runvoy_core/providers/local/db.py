"""The local provider's SQLite databases under RUNVOY_HOME.

``state.db`` holds execution records, their events, lock registers and the supervisor's task rows;
``logs.db`` holds captured output, so that a chatty command's log writes never queue behind record updates.

Imports only the standard library, and not pathlib (it pulls in re, fnmatch, urllib.parse and ipaddress):
the supervisor process opens these databases and must start fast (decision 0210).

Every connection runs in autocommit mode (``isolation_level=None``); writes that must be atomic run inside
``BEGIN IMMEDIATE`` (see :func:`write`), which takes the write lock up front. A deferred transaction in WAL
mode can fail with SQLITE_BUSY_SNAPSHOT when it upgrades from read to write, which the busy timeout
does not cover.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator

TYPE_CHECKING = False  # typing costs the supervisor's start-up 3-5 ms; mypy reads this name as True
if TYPE_CHECKING:
    from pathlib import Path

STATE_DB = "state.db"
LOGS_DB = "logs.db"
SCHEMA_VERSION = 3
"""2: the status index, execution_labels and the cost rollups (decision 1402); 3: documents (decision 1502)."""
BUSY_TIMEOUT_MS = 30_000

STATE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS executions (
        id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS executions_newest ON executions (created_at DESC, id DESC)",
    # `list --status X` reads the newest rows of one status, however many runs of other statuses there are
    "CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, created_at DESC, id DESC)",
    # one row per label of a run, with the run's created_at, so `list --label k=v` reads only that label's
    # newest rows (a filter on the JSON would read every run until it found a page)
    """CREATE TABLE IF NOT EXISTS execution_labels (
        execution_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (execution_id, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS execution_labels_newest"
    " ON execution_labels (key, value, created_at DESC, execution_id DESC)",
    # hour buckets of ended runs' costs (runvoy_core.cost.rollups; providers/local/costs.py writes them),
    # with the ids already counted in cost_counted below: all written in one transaction, so a run is
    # counted exactly once
    """CREATE TABLE IF NOT EXISTS cost_rollups (
        bucket_key TEXT PRIMARY KEY,
        data TEXT NOT NULL
    ) WITHOUT ROWID""",
    # the same buckets summed per day (bucket_key of the row dated 00:00): a month reads ~30 rows per bucket
    """CREATE TABLE IF NOT EXISTS cost_rollups_daily (
        bucket_key TEXT PRIMARY KEY,
        data TEXT NOT NULL
    ) WITHOUT ROWID""",
    # running totals per bucket identity (the bucket key without its hour): all-time, and at the end of each
    # hour that had runs, so the cost since any hour is one subtraction per identity
    """CREATE TABLE IF NOT EXISTS cost_identities (
        identity_key TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        eq_runs TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS cost_cumulative (
        identity_key TEXT NOT NULL,
        hour_key TEXT NOT NULL,
        data TEXT NOT NULL,
        eq_runs TEXT NOT NULL,
        PRIMARY KEY (identity_key, hour_key)
    ) WITHOUT ROWID""",
    # the same running totals per provider and currency only, for the report by day
    """CREATE TABLE IF NOT EXISTS cost_provider_identities (
        identity_key TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        eq_runs TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS cost_provider_cumulative (
        identity_key TEXT NOT NULL,
        hour_key TEXT NOT NULL,
        data TEXT NOT NULL,
        eq_runs TEXT NOT NULL,
        PRIMARY KEY (identity_key, hour_key)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS cost_counted (
        execution_id TEXT PRIMARY KEY,
        bucket_key TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        execution_id TEXT NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_execution ON events (execution_id, seq)",
    """CREATE TABLE IF NOT EXISTS locks (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        value TEXT NOT NULL
    )""",
    # the DocumentStore port (decision 1502): JSON objects by namespace and key, listed in key order by
    # the primary key; versions come from the 'document_version' row of meta, one counter for every
    # document, so a version is never handed out twice (a deleted and re-created document gets a new one)
    """CREATE TABLE IF NOT EXISTS documents (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID""",
    # one row per started task; the supervisor reads its orders here and writes back what happened.
    # Secret values are never stored: only their names (the supervisor gets the values in its environment).
    """CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        argv TEXT NOT NULL,
        env TEXT NOT NULL,
        secret_names TEXT NOT NULL,
        cwd TEXT,
        timeout REAL,
        grace REAL NOT NULL,
        labels TEXT NOT NULL,
        image TEXT,
        sup_pid INTEGER,
        sup_start INTEGER,
        pid INTEGER,
        pgid INTEGER,
        proc_start INTEGER,
        started_at REAL,
        stop_requested_at REAL,
        stop_grace REAL,
        stop_force INTEGER NOT NULL DEFAULT 0,
        finished_at REAL,
        exit_code INTEGER,
        signal INTEGER,
        timed_out INTEGER NOT NULL DEFAULT 0,
        stopped INTEGER NOT NULL DEFAULT 0,
        killed INTEGER NOT NULL DEFAULT 0,
        failed_to_start INTEGER NOT NULL DEFAULT 0,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS tasks_by_execution ON tasks (execution_id)",
    "CREATE INDEX IF NOT EXISTS tasks_active ON tasks (finished_at) WHERE finished_at IS NULL",
)

STATE_UPGRADE: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        2,
        (
            # from version 1: the labels of the runs stored before, and a note that the runs which ended
            # before have to be counted into the rollups (done by LocalStore on its first rollups read: it
            # needs the records)
            "INSERT OR IGNORE INTO execution_labels (execution_id, key, value, created_at)"
            " SELECT e.id, l.key, l.value, e.created_at FROM executions e,"
            " json_each(e.data, '$.request.labels') l",
            "INSERT OR IGNORE INTO meta (key, value) SELECT 'rollups_backfill', 'pending'"
            " WHERE EXISTS (SELECT 1 FROM executions)",
        ),
    ),
    # 3 only adds the documents table, which STATE_SCHEMA creates
)
"""Run after STATE_SCHEMA when a state.db older than SCHEMA_VERSION is opened: the steps of the versions above
the file's, in order. Each step must be idempotent (a crash before the commit runs it again) and must never
run again once its version is reached: step 2 re-run would re-note the backfill it already did and read every
run's record again."""

LOGS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # one row per chunk of complete lines, as read from the pipe; the bytes themselves are appended to
    # logs/<execution id>.log and the row says where (decision 0205: SQLite indexes, a file holds the bytes)
    """CREATE TABLE IF NOT EXISTS log_chunks (
        execution_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        stream TEXT NOT NULL,
        ts REAL NOT NULL,
        offset INTEGER NOT NULL,
        length INTEGER NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS log_chunks_by_execution ON log_chunks (execution_id, seq)",
)
LOG_DIR = "logs"


def log_file(home: str | os.PathLike[str], execution_id: str) -> str:
    """Where an execution's output bytes live (the ids are [0-9a-f] and checked, never a path)."""
    if not execution_id or "/" in execution_id or execution_id.startswith("."):
        raise ValueError(f"not an execution id: {execution_id!r}")
    return os.path.join(home, LOG_DIR, f"{execution_id}.log")


def log_path(home: str | os.PathLike[str], execution_id: str) -> Path:
    """``log_file`` as a Path."""
    from pathlib import Path

    return Path(log_file(home, execution_id))


def connect(path: str | os.PathLike[str], schema: tuple[str, ...]) -> sqlite3.Connection:
    """An autocommit connection with WAL, a busy timeout and the schema in place."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(
        os.fspath(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    # the busy timeout first: switching to WAL needs a lock that another opener may hold
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        _create_schema(conn, schema)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _journal_mode_wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL. SQLite answers "database is locked" at once, without calling the busy handler, when
    another connection opening a new file holds its lock at that moment (several server replicas or threads
    creating one state.db): retried with a short backoff for as long as the busy timeout."""
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _create_schema(conn: sqlite3.Connection, schema: tuple[str, ...]) -> None:
    mode = _journal_mode_wal(conn)
    if str(mode).lower() != "wal":  # e.g. a network file system: still correct, only slower
        conn.execute("PRAGMA journal_mode=DELETE")
    with write(conn):
        # read again under the write lock: another opener may have upgraded the file meanwhile
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found >= SCHEMA_VERSION:
            return
        for statement in schema:
            conn.execute(statement)
        if schema is STATE_SCHEMA:
            for version, statements in STATE_UPGRADE:
                if found < version:
                    for statement in statements:
                        conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that holds the write lock from its first statement."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect_state(home: str | os.PathLike[str]) -> sqlite3.Connection:
    return connect(os.path.join(home, STATE_DB), STATE_SCHEMA)


def connect_logs(home: str | os.PathLike[str]) -> sqlite3.Connection:
    return connect(os.path.join(home, LOGS_DB), LOGS_SCHEMA)


class ThreadConnections:
    """One connection per thread and process: a shared connection would interleave two threads'
    transactions, and a connection must never cross a fork."""

    def __init__(self, home: str | os.PathLike[str], which: str) -> None:
        from pathlib import Path

        self.home = Path(home)
        self._schema = STATE_SCHEMA if which == STATE_DB else LOGS_SCHEMA
        self._path = self.home / which
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        pid: int | None = getattr(self._local, "pid", None)
        if conn is None or pid != os.getpid():
            conn = connect(self._path, self._schema)
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._guard:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._guard:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
