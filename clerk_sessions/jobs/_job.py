"""`RevocationJob`: a bulk revocation whose every outcome is kept in a store.

This module is the job as its users see it: creating one from ids (checked, and cut
into chunks as the store draws them), opening one, and reporting a job whose data the
store lost as lost. The worker loop of `RevocationJob.work`, and the outcome of each
item, are `_worker`; the places that keep jobs are the stores (`_store.JobStore`,
opened from a URL by `_store_url`).
"""

from __future__ import annotations

import math
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Generator,
    Iterable,
    Sequence,
)
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, cast

import anyio
import anyio.lowlevel

from clerk_sessions import _revocation as bulk
from clerk_sessions.jobs._store import (
    ItemKind,
    JobDataLost,
    JobInfo,
    JobStore,
    JobStoreError,
    gone,
)
from clerk_sessions.jobs._store_url import open_store
from clerk_sessions.jobs._worker import ProgressCallback, Worker
from clerk_sessions.models import ItemOutcome, JobStatus

if TYPE_CHECKING:
    from types import TracebackType

    from clerk_sessions import AsyncClerk

__all__ = ["RevocationJob"]

#: The longest job name accepted.
MAX_NAME_LENGTH = 200
#: The longest id accepted (Clerk's ids are about 32 characters).
MAX_ID_LENGTH = 256


class RevocationJob:
    """A durable bulk revocation: every item's outcome kept in a store.

    Make one with `RevocationJob.create` or `RevocationJob.open`; work it from any
    number of processes with `work`. A job opened from a URL owns its store connection:
    ``await job.aclose()`` or ``async with job:`` releases it.

    A job remembers how many items it had. If its data vanishes from the store (Redis
    evicted its keys, restarted without persistence or failed over to a stale replica;
    the SQLite file was deleted, replaced or truncated), `status`, `work`, `outcomes`
    and `retry_failed` raise `JobStoreError` saying that the job's data was lost and how
    many of its items are unaccounted for, never a driver's error text and never a job
    that looks as if it had made progress, or had never existed.
    """

    def __init__(self, store: JobStore, info: JobInfo, *, owns_store: bool) -> None:
        """Use `create` or `open`."""
        self._store = store
        self._info = info
        self._owns_store = owns_store

    def __repr__(self) -> str:
        return f"RevocationJob({self.name!r}, kind={self.kind!r}, store={self._store!r})"

    @property
    def name(self) -> str:
        """The job's name in its store."""
        return self._info.name

    @property
    def kind(self) -> Literal["session", "user"]:
        """``"session"`` for a job of session ids, ``"user"`` for one of user ids."""
        return self._info.kind.value

    @property
    def total(self) -> int:
        """How many distinct ids the job holds."""
        return self._info.total

    @classmethod
    async def create(
        cls,
        store: str | os.PathLike[str] | JobStore,
        name: str,
        *,
        session_ids: Iterable[str] | AsyncIterable[str] | None = None,
        user_ids: Iterable[str] | AsyncIterable[str] | None = None,
        chunk_size: int = 100,
    ) -> RevocationJob:
        """Create job ``name`` in ``store`` from ``session_ids`` or ``user_ids`` (one).

        ``store`` is ``sqlite:///ABSOLUTE/PATH``, a file path, ``redis://...`` (extra
        ``redis``), or a store object. The ids are any iterable or async iterable of
        strings, consumed once, ``chunk_size`` at a time: they are never held in memory
        whole. An id listed twice is one item. Workers claim ``chunk_size`` items at a
        time: a crash repeats at most the requests of the chunks it held.

        All or nothing: if the ids raise, the call is cancelled or the process dies, no
        job of that name exists afterwards and creating it again works.

        Raises `ValueError` if the store already has a job of that name, or for an
        unusable name or id (empty, over `MAX_ID_LENGTH` characters, or holding
        whitespace or control characters), and `TypeError` for ids that are not strings
        or for both or neither of ``session_ids`` and ``user_ids``. A Redis store whose
        ``maxmemory-policy`` is not ``noeviction`` (an evicting server would drop a job's
        items) is a `JobStoreError` naming the setting, unless the URL says
        ``?allow_eviction=true``; any other failure of the store is a `JobStoreError` too.
        """
        _check_name(name)
        if (session_ids is None) == (user_ids is None):
            raise TypeError("create() needs exactly one of session_ids= or user_ids=")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
            raise TypeError(f"chunk_size must be an integer, got {type(chunk_size).__name__}")
        if not 1 <= chunk_size <= 10_000:
            raise ValueError(f"chunk_size must be between 1 and 10000, got {chunk_size}")
        kind = ItemKind.SESSION if session_ids is not None else ItemKind.USER
        ids = session_ids if session_ids is not None else user_ids
        assert ids is not None
        chunks = _chunks(ids, chunk_size, kind)
        job_store, owned = _store(store)
        try:
            with _unnamed_loss():
                info = await job_store.create(name, kind, chunks)
        except BaseException:
            if owned:
                with anyio.CancelScope(shield=True):
                    await job_store.aclose()
            raise
        return cls(job_store, info, owns_store=owned)

    @classmethod
    async def open(cls, store: str | os.PathLike[str] | JobStore, name: str) -> RevocationJob:
        """The existing job ``name`` of ``store``; `LookupError` if there is none (never
        created, or its data vanished whole before this call: nothing tells them apart).

        A Redis store refuses a server that may evict keys (`JobStoreError`, see
        `create`)."""
        _check_name(name)
        job_store, owned = _store(store)
        try:
            with _unnamed_loss():
                info = await job_store.open(name)
        except BaseException:
            if owned:
                with anyio.CancelScope(shield=True):
                    await job_store.aclose()
            raise
        return cls(job_store, info, owns_store=owned)

    async def work(
        self,
        clerk: AsyncClerk,
        *,
        concurrency: int = 8,
        lease_s: float = 60.0,
        on_progress: ProgressCallback | None = None,
    ) -> JobStatus:
        """Claim chunks and revoke their items with ``clerk`` until every item of the job
        has an outcome; return the final status.

        Any number of processes may work one job at once, each with its own client (give
        them one shared quota: ``RedisRateLimit``). Each holds its chunks under a lease of
        ``lease_s`` seconds, renewed while it works; a chunk whose worker stopped (killed,
        frozen, cut off) for ``lease_s`` is taken over by another, and the stopped worker
        records nothing for it if it comes back. Once no chunk is left to claim, ``work``
        waits for the chunks other workers hold (taking over any whose lease runs out).

        A session id is revoked when the revoke succeeds or the session was already
        revoked or ended, failed otherwise (with the error). A user id lists the user's
        active sessions and revokes each. Requests use ``clerk``'s retry policy and rate
        limit.

        ``on_progress(done, total)`` is called after each recorded chunk with the job's
        counts (items with an outcome, from every worker). A 401 or 403 stops the work
        (raised: it would fail every item alike); so does an exception from
        ``on_progress``. Interrupted or stopped, the worker gives back the chunks it held
        so that the next worker does not wait for their leases.
        """
        # Loaded here: a process that only creates jobs never loads the HTTP stack.
        from clerk_sessions import AsyncClerk

        if not isinstance(clerk, AsyncClerk):
            raise TypeError(
                f"work() needs an AsyncClerk, got {type(clerk).__name__} (the jobs are async)"
            )
        bulk.check_concurrency(concurrency)
        bulk.check_progress(on_progress)
        if isinstance(lease_s, bool) or not isinstance(lease_s, (int, float)):
            raise TypeError(f"lease_s must be a number, got {type(lease_s).__name__}")
        if not (math.isfinite(lease_s) and lease_s > 0):
            raise ValueError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        worker = Worker(
            self._store, self._info, clerk.sessions, concurrency, float(lease_s), on_progress
        )
        with self._accounted():
            # Opened again: the store checks itself (a Redis store refuses an evicting
            # server) and the job, which may have vanished since this object saw it.
            await self._store.open(self.name)
            await worker.run()
            return await self._store.status(self.name)

    async def status(self) -> JobStatus:
        """The job's counts: ``total``, ``revoked``, ``failed``, ``pending``, ``done``."""
        with self._accounted():
            return await self._store.status(self.name)

    def outcomes(
        self, kind: Literal["revoked", "failed"] | None = None
    ) -> AsyncIterator[tuple[str, ItemOutcome]]:
        """Every recorded ``(item_id, outcome)``; only revoked or failed ones if ``kind``
        says so. Streams from the store (memory stays small whatever the job's size)."""
        if kind not in (None, "revoked", "failed"):
            raise ValueError(f"kind must be None, 'revoked' or 'failed', got {kind!r}")
        return self._outcomes(kind)

    async def _outcomes(
        self, kind: Literal["revoked", "failed"] | None
    ) -> AsyncIterator[tuple[str, ItemOutcome]]:
        with self._accounted():
            async for pair in self._store.outcomes(self.name, kind):
                yield pair

    async def retry_failed(self) -> int:
        """Put the failed items whose error was retryable (429, 5XX, no answer) back to
        pending, for the next `work`; return how many."""
        with self._accounted():
            return await self._store.retry_failed(self.name)

    @contextmanager
    def _accounted(self) -> Generator[None]:
        """Report a job whose data vanished from the store as lost, with the count of
        its items unaccounted for: the store's count when it has one, else all of them
        (this object saw the job, so a store that no longer has it lost it)."""
        try:
            yield
        except JobDataLost as exc:
            unaccounted = self.total if exc.unaccounted is None else exc.unaccounted
            raise self._lost(unaccounted, str(exc)) from exc
        except LookupError as exc:
            if not gone(exc):
                raise
            raise self._lost(self.total, f"{self._store!r} no longer has it at all") from exc

    def _lost(self, unaccounted: int, reason: str) -> JobStoreError:
        return JobStoreError(
            f"the data of job {self.name!r} was lost in the store: {unaccounted} of its "
            f"{self.total} items are unaccounted for ({reason}). Create the job again "
            "under a new name from the same ids: revoking a session twice is harmless"
        )

    async def aclose(self) -> None:
        """Close the store connection if this job opened it (from a URL)."""
        if self._owns_store:
            await self._store.aclose()

    async def __aenter__(self) -> RevocationJob:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@contextmanager
def _unnamed_loss() -> Generator[None]:
    """A loss the store found before there is a job to count it against (a damaged
    file at open), as the plain `JobStoreError` that every failure of the API is."""
    try:
        yield
    except JobDataLost as exc:
        raise JobStoreError(str(exc)) from exc


def _store(store: str | os.PathLike[str] | JobStore) -> tuple[JobStore, bool]:
    """The store, and whether the job owns it (opened from a URL)."""
    if isinstance(store, (str, os.PathLike)):
        return open_store(store), True
    if not all(hasattr(store, method) for method in ("create", "open", "claim", "complete")):
        raise TypeError(f"store must be a URL, a path or a job store, got {type(store).__name__}")
    return store, False


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"a job name is a string, got {type(name).__name__}")
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValueError(
            f"a job name is 1 to {MAX_NAME_LENGTH} printable characters, got {name[:50]!r}"
        )


def _check_id(item: object, position: int, kind: ItemKind) -> str:
    if not isinstance(item, str):
        raise TypeError(
            f"{kind.value} ids must be strings, got {type(item).__name__} at item {position}"
        )
    if not item or len(item) > MAX_ID_LENGTH or not item.isprintable() or " " in item:
        raise ValueError(
            f"{kind.value} id at item {position} is not an id: {item[:50]!r} (ids are 1 to "
            f"{MAX_ID_LENGTH} printable characters without spaces)"
        )
    return item


async def _chunks(
    ids: Iterable[str] | AsyncIterable[str], chunk_size: int, kind: ItemKind
) -> AsyncIterator[Sequence[str]]:
    """``ids`` checked and cut into lists of ``chunk_size``, drawn as the store asks."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{kind.value}_ids must be an iterable of ids, not a single id")
    chunk: list[str] = []
    position = 0
    if isinstance(ids, AsyncIterable):
        async for item in cast("AsyncIterable[object]", ids):
            chunk.append(_check_id(item, position, kind))
            position += 1
            if len(chunk) == chunk_size:
                yield chunk
                chunk = []
    elif isinstance(ids, Iterable):
        for item in cast("Iterable[object]", ids):
            chunk.append(_check_id(item, position, kind))
            position += 1
            if len(chunk) == chunk_size:
                yield chunk
                chunk = []
                # A long sync input must not starve the event loop.
                await anyio.lowlevel.checkpoint()
    else:
        raise TypeError(
            f"{kind.value}_ids must be an iterable or async iterable of strings, "
            f"got {type(ids).__name__}"
        )
    if chunk:
        yield chunk
