"""The SQLite job store's file: its tables, how a connection is made ready to use it,
and the write transaction every change runs in.

Layout (``PRAGMA user_version`` = `SCHEMA_VERSION`)::

    jobs    (id, name UNIQUE or NULL while staging, staging_name, kind, total,
             revoked, failed, heartbeat_at)
    chunks  (job, chunk, fence, lease_until, worker, pending)   primary key (job, chunk)
    items   (rowid, job, chunk, item, state, retryable, outcome) unique (job, item)

``state`` is `PENDING`, `REVOKED` or `FAILED`; ``outcome`` is the outcome's JSON, NULL
for most revoked items (`PLAIN_REVOKED`).
"""

from __future__ import annotations

import sqlite3
import time

from clerk_sessions.errors import ConfigurationError
from clerk_sessions.jobs._store import JobDataLost
from clerk_sessions.models import ItemOutcome

__all__ = ["FAILED", "PENDING", "PLAIN_REVOKED", "REVOKED", "SCHEMA_VERSION", "set_up", "write"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE,
    staging_name TEXT,
    kind TEXT NOT NULL,
    total INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    next_chunk INTEGER NOT NULL DEFAULT 0,
    heartbeat_at REAL
);
CREATE TABLE IF NOT EXISTS chunks (
    job INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    fence INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    worker TEXT,
    pending INTEGER NOT NULL,
    PRIMARY KEY (job, chunk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_open ON chunks (job, chunk) WHERE pending > 0;
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    job INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    item TEXT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    retryable INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    UNIQUE (job, item)
);
CREATE INDEX IF NOT EXISTS items_chunk ON items (job, chunk);
CREATE INDEX IF NOT EXISTS items_failed ON items (job) WHERE state = 2;
"""

# Item states.
PENDING, REVOKED, FAILED = 0, 1, 2
# The outcome of most items; stored as NULL to keep the file small.
PLAIN_REVOKED = ItemOutcome(ok=True)


def set_up(conn: sqlite3.Connection, path: str, *, create: bool, busy_timeout_s: float) -> None:
    """Make ``conn`` ready for the store: WAL, ``synchronous=NORMAL``, and the schema,
    made in a new file. ``create=False`` once the store has opened the file before: an
    empty one then lost its jobs (`JobDataLost`). `ConfigurationError` for a file that
    is another database, or a job store of another schema version."""
    _use_wal(conn, busy_timeout_s)
    conn.execute("PRAGMA synchronous=NORMAL")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise ConfigurationError(
            f"{path!r} is a job store of schema version {version}; this "
            f"version of clerk-sessions reads version {SCHEMA_VERSION} only"
        )
    if version == 0 and not create:
        raise JobDataLost(f"SQLite job store {path!r}: the file was emptied while in use")
    if version == 0:
        with write(conn):
            tables = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables - {"jobs", "chunks", "items"}:
                raise ConfigurationError(f"{path!r} is an SQLite database but not a job store")
            # One statement at a time: executescript() would commit the
            # transaction that makes two processes' first opens take turns.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _use_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch the file to WAL, waiting out other connections for up to the busy timeout.

    SQLite answers the switch with "database is locked" at once, without its busy
    handler, while another connection is switching the same new file or creating the
    schema in it: two workers that first open a new store together would see it a
    third of the time (measured: 125 of 400 pairs of threads). The mode is kept in the
    file, so the attempt after the other's switch finds WAL and returns at once.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)  # on the store's worker thread, never on the event loop
        pause = min(pause * 2, 0.05)


class write:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception).

    IMMEDIATE takes the write lock at the start, so two processes never both read and
    then both try to upgrade to writing (which SQLite would fail at once, busy timeout
    or not).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
                return
            except BaseException:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        # Some errors (a full disk, an I/O error) end the transaction themselves; the
        # connection must be left outside any transaction either way.
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
