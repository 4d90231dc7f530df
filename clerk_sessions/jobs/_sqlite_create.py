"""The transactions of an SQLite create, all or nothing without holding the write lock
for long (see `clerk_sessions.jobs._sqlite_store`): the batches that fill a *staging* job
row (``name`` NULL) and renew its heartbeat, the one UPDATE that names it, and the
collection of what creates that died left behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from clerk_sessions.jobs._sqlite_schema import write
from clerk_sessions.jobs._store import JobStoreError

__all__ = [
    "STALE_S",
    "collect_dead_creates",
    "delete_job",
    "insert_batch",
    "publish",
    "renew_staging",
]

#: A staging row whose heartbeat is older than this belongs to a dead create.
STALE_S = 60.0
# Rows deleted per transaction when cleaning up a dead create.
_DELETE_BATCH = 20_000

_REAPED = (
    "this create stalled for longer than the store waits for a live one "
    f"({STALE_S:g} s) and another create removed its work: run it again"
)


def insert_batch(
    job: int, batch: list[Sequence[str]], now: float
) -> Callable[[sqlite3.Connection], int]:
    """Insert the chunks of ``batch``; returns how many new items they held."""

    def insert(conn: sqlite3.Connection) -> int:
        added = 0
        with write(conn):
            row = conn.execute(
                "SELECT next_chunk FROM jobs WHERE id = ? AND heartbeat_at > 0", (job,)
            ).fetchone()
            if row is None:
                raise JobStoreError(_REAPED)
            chunk = row[0]
            for ids in batch:
                cursor = conn.executemany(
                    "INSERT OR IGNORE INTO items (job, chunk, item) VALUES (?, ?, ?)",
                    [(job, chunk, item) for item in ids],
                )
                if cursor.rowcount:
                    conn.execute(
                        "INSERT INTO chunks (job, chunk, pending) VALUES (?, ?, ?)",
                        (job, chunk, cursor.rowcount),
                    )
                    added += cursor.rowcount
                    chunk += 1
            conn.execute(
                "UPDATE jobs SET next_chunk = ?, heartbeat_at = ? WHERE id = ?",
                (chunk, now, job),
            )
        return added

    return insert


def renew_staging(conn: sqlite3.Connection, job: int, now: float) -> None:
    with write(conn):
        cursor = conn.execute(
            "UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND heartbeat_at > 0", (now, job)
        )
        if cursor.rowcount != 1:
            raise JobStoreError(_REAPED)


def publish(conn: sqlite3.Connection, job: int, name: str, total: int) -> None:
    """Give the staging job its name: the one step that makes it exist."""
    with write(conn):
        try:
            cursor = conn.execute(
                "UPDATE jobs SET name = ?, staging_name = NULL, total = ?, heartbeat_at = NULL"
                " WHERE id = ? AND name IS NULL AND heartbeat_at > 0",
                (name, total, job),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"a job named {name!r} was created meanwhile") from None
        if cursor.rowcount != 1:
            raise JobStoreError(_REAPED)


def delete_job(conn: sqlite3.Connection, job: int) -> None:
    """Delete a staging job's rows, a batch per transaction (the row goes last).

    Does nothing to a job that has its name: a create cancelled just after publishing
    must not take a finished job with it.
    """
    while True:
        with write(conn):
            if not conn.execute(
                "SELECT 1 FROM jobs WHERE id = ? AND name IS NULL", (job,)
            ).fetchone():
                return
            cursor = conn.execute(
                "DELETE FROM items WHERE id IN"
                " (SELECT id FROM items INDEXED BY items_chunk WHERE job = ? LIMIT ?)",
                (job, _DELETE_BATCH),
            )
            if cursor.rowcount == 0:
                conn.execute("DELETE FROM chunks WHERE job = ?", (job,))
                conn.execute("DELETE FROM jobs WHERE id = ? AND name IS NULL", (job,))
                return


def collect_dead_creates(conn: sqlite3.Connection, now: float) -> None:
    """Delete what creates that died (killed, or frozen past `STALE_S`) left behind."""
    with write(conn):
        # heartbeat_at = 0 marks a staging job as dead: its creator, if it was only
        # frozen, fails on waking instead of renewing it, and a cleanup that is itself
        # interrupted is finished by the next one.
        conn.execute(
            "UPDATE jobs SET heartbeat_at = 0 WHERE name IS NULL AND heartbeat_at < ?",
            (now - STALE_S,),
        )
        dead = [
            row[0]
            for row in conn.execute("SELECT id FROM jobs WHERE name IS NULL AND heartbeat_at = 0")
        ]
    for job in dead:
        delete_job(conn, job)
