"""The SQLite job store: one file on one host, standard library only.

Its tables, and how a connection is made ready to use them, are `_sqlite_schema`; the
transactions of a create are `_sqlite_create`.

- **Create is all or nothing without holding the write lock for long.** A create first
  inserts a *staging* job row (``name`` NULL), then its chunks and items in batches of a
  few thousand ids, one short transaction each, and finally sets ``name`` in one UPDATE:
  until then no lookup by name sees it. The UNIQUE index on ``name`` decides between
  two creates of one name, and on ``(job, item)`` dedups ids across the whole job
  (``INSERT OR IGNORE``), so memory holds one batch, never the ids seen. A staging row
  carries a heartbeat; a create that was killed stops renewing it, and the next create
  deletes its rows once the heartbeat is `_sqlite_create.STALE_S` old. A staging create that finds
  its row deleted (it was frozen that long) fails instead of resurrecting it.
- **Counters, not counts.** ``jobs.revoked``/``failed`` and ``chunks.pending`` are kept
  in the same transactions that change item states, so ``status`` and ``claim`` never
  scan the items.
- **Leases and fencing.** ``claim`` takes the first chunk with pending items whose lease
  is NULL or past (``time.time()``: every worker is on this host) and increments its
  ``fence``, in one ``BEGIN IMMEDIATE`` transaction; ``complete`` writes the outcomes
  only if the fence is unchanged, in one transaction with the checks.
- **I/O off the loop.** One connection per store object, used from worker threads
  (``anyio.to_thread``) one call at a time under a lock. WAL journal (readers never wait
  for the writer), ``synchronous=NORMAL`` (a commit survives any process crash; only an
  OS crash or power loss may lose the last commits, which the fencing then redoes), and
  a busy timeout so that processes sharing the file wait for each other instead of
  failing.
- **The file under the connection.** A connection keeps reading its page cache and
  writing to the file it opened even after that file was deleted, replaced or
  truncated, so every call first asks `FileWatch` (``_sqlite_file``) what became of it.
  Deleted or truncated is `JobDataLost`; replaced (a backup restored) drops the old
  connection and carries on with the file now at the path, which is never made anew.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from clerk_sessions.errors import ConfigurationError
from clerk_sessions.jobs._sqlite_create import (
    collect_dead_creates,
    delete_job,
    insert_batch,
    publish,
    renew_staging,
)
from clerk_sessions.jobs._sqlite_errors import cannot_open, failure, not_a_database
from clerk_sessions.jobs._sqlite_file import FileWatch
from clerk_sessions.jobs._sqlite_schema import FAILED, PLAIN_REVOKED, REVOKED, set_up, write
from clerk_sessions.jobs._store import (
    Claim,
    ItemKind,
    JobDataLost,
    JobInfo,
    JobStoreError,
    outcome_from_json,
    outcome_to_json,
)
from clerk_sessions.models import ItemOutcome, JobStatus

__all__ = ["SQLiteStore"]

logger = logging.getLogger("clerk_sessions.jobs")

_T = TypeVar("_T")


#: How long processes sharing the file wait for each other's write transactions.
BUSY_TIMEOUT_S = 30.0
# A staging create renews its heartbeat at least this often (see `_sqlite_create.STALE_S`).
_HEARTBEAT_S = 5.0
# Ids written per create transaction: large enough to amortise a commit, small enough
# that other processes never wait long for the write lock.
_CREATE_BATCH = 5_000
# Outcomes read per query by `outcomes`.
_READ_BATCH = 1_000


class SQLiteStore:
    """A `JobStore` in the SQLite file at ``path`` (created when missing)."""

    def __init__(self, path: str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._ids: dict[str, int] = {}
        self._watch = FileWatch(path)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # ------------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(connection)`` on a worker thread, one call at a time."""
        return await anyio.to_thread.run_sync(self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the job store {self.path!r} is closed")
            if self._conn is None:
                self._conn = self._reopen() if self._watch.opened else self._connect()
            else:
                self._check_file()
            try:
                return fn(self._conn)
            except sqlite3.Error as exc:
                # Locked past the busy timeout, disk full, a corrupt file...: the
                # transaction was rolled back, nothing of the operation is recorded.
                raise failure(exc, self.path, BUSY_TIMEOUT_S) from exc
            finally:
                self._watch.note()

    def _check_file(self) -> None:
        """Make sure the connection still works on the file at the path (see the module
        doc); under the lock."""
        change = self._watch.change()
        if change == "same":
            return
        self._drop()
        if change != "replaced":
            raise JobDataLost(f"SQLite job store {self.path!r}: the file was {change} while in use")
        logger.warning(
            "SQLite job store %r: the file was replaced while in use; going on with the new one",
            self.path,
        )
        self._conn = self._reopen()

    def _reopen(self) -> sqlite3.Connection:
        """A connection to the file now at the path, which the store had opened before:
        one that is no longer a job store lost the jobs."""
        try:
            return self._connect(create=False)
        except ConfigurationError as exc:
            raise JobDataLost(
                f"SQLite job store {self.path!r}: the file is no longer a job store "
                "(damaged, or replaced by another file)"
            ) from exc

    def _drop(self) -> None:
        """Forget the connection and what it knew: it works on a file that is gone."""
        assert self._conn is not None
        self._conn.close()
        self._conn = None
        self._ids.clear()

    def _connect(self, *, create: bool = True) -> sqlite3.Connection:
        """A connection to the file at the path; ``create=False`` once the store has
        opened it before (a file that vanished since must not come back empty)."""
        target = self.path if create else f"{Path(self.path).absolute().as_uri()}?mode=rw"
        try:
            conn = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
                uri=not create,
            )
        except sqlite3.OperationalError as exc:
            if create:
                raise ConfigurationError(cannot_open(self.path)) from None
            raise JobDataLost(
                f"SQLite job store {self.path!r}: the file was deleted while in use"
            ) from exc
        try:
            set_up(conn, self.path, create=create, busy_timeout_s=BUSY_TIMEOUT_S)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if not_a_database(exc):
                raise ConfigurationError(
                    f"{self.path!r} is not a job store (not an SQLite database, or a damaged one)"
                ) from None
            raise failure(exc, self.path, BUSY_TIMEOUT_S) from exc
        except BaseException:
            conn.close()
            raise
        self._watch.open()
        return conn

    def _job_id(self, conn: sqlite3.Connection, name: str) -> int:
        job = self._ids.get(name)
        if job is None:
            row = conn.execute("SELECT id FROM jobs WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise LookupError(f"no job named {name!r} in {self.path!r}")
            job = self._ids[name] = row[0]
        return job

    # ------------------------------------------------------------------ create

    async def create(
        self, name: str, kind: ItemKind, chunks: AsyncIterable[Sequence[str]]
    ) -> JobInfo:
        """See `JobStore.create`."""
        job = await self._run(lambda conn: self._begin_create(conn, name, kind))
        try:
            total = await self._fill(job, chunks)
            await self._run(lambda conn: publish(conn, job, name, total))
        except BaseException:
            # A failed cleanup is probably what failed the create too (a full disk): the
            # staging rows are invisible, and the next create collects them once stale.
            with anyio.CancelScope(shield=True), suppress(JobStoreError):
                await self._run(lambda conn: delete_job(conn, job))
            raise
        return JobInfo(name=name, kind=kind, total=total)

    async def _fill(self, job: int, chunks: AsyncIterable[Sequence[str]]) -> int:
        """Write ``chunks`` into staging job ``job``; return how many items they held.

        The ids' and the store's exceptions come out as they are, never wrapped in an
        exception group: the heartbeat task only records its failure.
        """
        failure: list[BaseException] = []
        total = 0
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._staging_heartbeat, job, tg.cancel_scope, failure)
            try:
                batch: list[Sequence[str]] = []
                size = 0
                async for chunk in chunks:
                    batch.append(chunk)
                    size += len(chunk)
                    if size >= _CREATE_BATCH:
                        total += await self._run(insert_batch(job, batch, self._clock()))
                        batch, size = [], 0
                if batch:
                    total += await self._run(insert_batch(job, batch, self._clock()))
            except Exception as exc:
                failure.append(exc)
            tg.cancel_scope.cancel()
        if failure:
            raise failure[0]
        return total

    def _begin_create(self, conn: sqlite3.Connection, name: str, kind: ItemKind) -> int:
        collect_dead_creates(conn, self._clock())
        with write(conn):
            if conn.execute("SELECT 1 FROM jobs WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"a job named {name!r} exists already in {self.path!r}")
            cursor = conn.execute(
                "INSERT INTO jobs (staging_name, kind, heartbeat_at) VALUES (?, ?, ?)",
                (name, kind.value, self._clock()),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    async def _staging_heartbeat(
        self, job: int, scope: anyio.CancelScope, failure: list[BaseException]
    ) -> None:
        # The batches renew the heartbeat too, but an input that is slow to produce ids
        # (a pipe from another program) must not make this create look dead.
        while True:
            await anyio.sleep(_HEARTBEAT_S)
            try:
                await self._run(lambda conn: renew_staging(conn, job, self._clock()))
            except Exception as exc:
                failure.append(exc)
                scope.cancel()
                return

    # ------------------------------------------------------------------ the rest

    async def open(self, name: str) -> JobInfo:
        """See `JobStore.open`."""

        def read(conn: sqlite3.Connection) -> JobInfo:
            row = conn.execute(
                "SELECT id, kind, total FROM jobs WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise LookupError(f"no job named {name!r} in {self.path!r}")
            self._ids[name] = row[0]
            return JobInfo(name=name, kind=ItemKind(row[1]), total=row[2])

        return await self._run(read)

    async def claim(self, name: str, worker: str, lease_s: float) -> Claim | None:
        """See `JobStore.claim`."""

        def claim(conn: sqlite3.Connection) -> Claim | None:
            job = self._job_id(conn, name)
            now = self._clock()
            with write(conn):
                row = conn.execute(
                    "SELECT chunk, fence FROM chunks INDEXED BY chunks_open"
                    " WHERE job = ? AND pending > 0 AND (lease_until IS NULL OR lease_until <= ?)"
                    " ORDER BY chunk LIMIT 1",
                    (job, now),
                ).fetchone()
                if row is None:
                    return None
                chunk, fence = row[0], row[1] + 1
                conn.execute(
                    "UPDATE chunks SET fence = ?, lease_until = ?, worker = ?"
                    " WHERE job = ? AND chunk = ?",
                    (fence, now + lease_s, worker, job, chunk),
                )
                # One row (one step) for the whole chunk, rather than one per item.
                listed = conn.execute(
                    "SELECT json_group_array(item) FROM (SELECT item FROM items"
                    " WHERE job = ? AND chunk = ? AND state = 0 ORDER BY id)",
                    (job, chunk),
                ).fetchone()[0]
            return Claim(chunk_id=str(chunk), items=tuple(json.loads(listed)), fence=fence)

        return await self._run(claim)

    async def heartbeat(self, name: str, claim: Claim, lease_s: float) -> bool:
        """See `JobStore.heartbeat`."""

        def renew(conn: sqlite3.Connection) -> bool:
            job = self._job_id(conn, name)
            with write(conn):
                cursor = conn.execute(
                    "UPDATE chunks SET lease_until = ? WHERE job = ? AND chunk = ?"
                    " AND fence = ? AND lease_until IS NOT NULL",
                    (self._clock() + lease_s, job, int(claim.chunk_id), claim.fence),
                )
            return cursor.rowcount == 1

        return await self._run(renew)

    async def complete(self, name: str, claim: Claim, outcomes: Mapping[str, ItemOutcome]) -> bool:
        """See `JobStore.complete`."""
        _check_outcomes(claim, outcomes)
        # Most items are plainly revoked: they are written by one statement, the others
        # one row each. (Each row of an executemany is a step that releases and retakes
        # the GIL, which a busy event loop makes slow to get back.)
        plain = [item for item, outcome in outcomes.items() if outcome == PLAIN_REVOKED]
        rows = [
            (
                REVOKED if outcome.ok else FAILED,
                int(outcome.retryable),
                outcome_to_json(outcome),
                item,
            )
            for item, outcome in outcomes.items()
            if outcome != PLAIN_REVOKED
        ]
        revoked = sum(1 for outcome in outcomes.values() if outcome.ok)
        count = len(outcomes)

        def record(conn: sqlite3.Connection) -> bool:
            job = self._job_id(conn, name)
            chunk = int(claim.chunk_id)
            with write(conn):
                row = conn.execute(
                    "SELECT fence, lease_until FROM chunks WHERE job = ? AND chunk = ?",
                    (job, chunk),
                ).fetchone()
                if row is None or row[0] != claim.fence or row[1] is None:
                    return False
                written = 0
                if plain:
                    written += conn.execute(
                        "UPDATE items SET state = 1 WHERE job = ? AND chunk = ? AND state = 0"
                        " AND item IN (SELECT value FROM json_each(?))",
                        (job, chunk, json.dumps(plain)),
                    ).rowcount
                if rows:
                    written += conn.executemany(
                        "UPDATE items SET state = ?, retryable = ?, outcome = ?"
                        " WHERE job = ? AND chunk = ? AND item = ? AND state = 0",
                        [(*row[:3], job, chunk, row[3]) for row in rows],
                    ).rowcount
                if written != count:
                    # A claim that holds cannot see its items change; if they did, the
                    # file was changed behind the store's back: write nothing.
                    raise JobStoreError(
                        f"job {name!r} chunk {chunk}: {written} of {count} items"
                        " were pending; the store was modified outside clerk-sessions"
                    )
                conn.execute(
                    "UPDATE chunks SET pending = pending - ?, lease_until = NULL, worker = NULL"
                    " WHERE job = ? AND chunk = ?",
                    (count, job, chunk),
                )
                conn.execute(
                    "UPDATE jobs SET revoked = revoked + ?, failed = failed + ? WHERE id = ?",
                    (revoked, count - revoked, job),
                )
            return True

        return await self._run(record)

    async def release(self, name: str, claim: Claim) -> None:
        """See `JobStore.release`."""

        def release(conn: sqlite3.Connection) -> None:
            job = self._job_id(conn, name)
            with write(conn):
                conn.execute(
                    "UPDATE chunks SET lease_until = NULL, worker = NULL"
                    " WHERE job = ? AND chunk = ? AND fence = ?",
                    (job, int(claim.chunk_id), claim.fence),
                )

        await self._run(release)

    async def status(self, name: str) -> JobStatus:
        """See `JobStore.status`."""

        def read(conn: sqlite3.Connection) -> JobStatus:
            row = conn.execute(
                "SELECT total, revoked, failed FROM jobs WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise LookupError(f"no job named {name!r} in {self.path!r}")
            return JobStatus(name=name, total=row[0], revoked=row[1], failed=row[2])

        return await self._run(read)

    async def outcomes(
        self, name: str, kind: Literal["revoked", "failed"] | None = None
    ) -> AsyncIterator[tuple[str, ItemOutcome]]:
        """See `JobStore.outcomes`."""
        states = {None: "state > 0", "revoked": "state = 1", "failed": "state = 2"}[kind]
        job = await self._run(lambda conn: self._job_id(conn, name))
        after = 0
        while True:

            def page(
                conn: sqlite3.Connection, after: int = after
            ) -> list[tuple[int, str, int, str | None]]:
                return conn.execute(
                    f"SELECT id, item, state, outcome FROM items WHERE job = ? AND {states}"
                    " AND id > ? ORDER BY id LIMIT ?",
                    (job, after, _READ_BATCH),
                ).fetchall()

            rows = await self._run(page)
            for _id, item, _state, outcome in rows:
                yield item, PLAIN_REVOKED if outcome is None else outcome_from_json(outcome)
            if len(rows) < _READ_BATCH:
                return
            after = rows[-1][0]

    async def retry_failed(self, name: str) -> int:
        """See `JobStore.retry_failed`."""

        def requeue(conn: sqlite3.Connection) -> int:
            job = self._job_id(conn, name)
            with write(conn):
                per_chunk = conn.execute(
                    "SELECT chunk, count(*) FROM items INDEXED BY items_failed"
                    " WHERE job = ? AND state = 2 AND retryable = 1 GROUP BY chunk",
                    (job,),
                ).fetchall()
                if not per_chunk:
                    return 0
                conn.executemany(
                    "UPDATE chunks SET pending = pending + ? WHERE job = ? AND chunk = ?",
                    [(count, job, chunk) for chunk, count in per_chunk],
                )
                cursor = conn.execute(
                    "UPDATE items SET state = 0, retryable = 0, outcome = NULL"
                    " WHERE job = ? AND state = 2 AND retryable = 1",
                    (job,),
                )
                conn.execute(
                    "UPDATE jobs SET failed = failed - ? WHERE id = ?", (cursor.rowcount, job)
                )
                return cursor.rowcount

        return await self._run(requeue)

    async def aclose(self) -> None:
        """See `JobStore.aclose`."""

        def close() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await anyio.to_thread.run_sync(close)


def _check_outcomes(claim: Claim, outcomes: Mapping[str, ItemOutcome]) -> None:
    if len(outcomes) != len(claim.items) or not all(item in outcomes for item in claim.items):
        missing = [item for item in claim.items if item not in outcomes][:3]
        extra = [item for item in outcomes if item not in set(claim.items)][:3]
        raise ValueError(
            f"complete() needs one outcome per item of the claim: missing {missing}, "
            f"not in the claim {extra}"
        )
