"""`RevocationJob`: a bulk revocation whose every outcome is kept in a store.

The worker (`_Worker`) holds a few claimed chunks at a time. One feeder task claims a
chunk and queues its items for ``concurrency`` revoking tasks; it claims the next chunk
when the last item is taken, while those requests run: requests stay at ``concurrency``
across chunk boundaries, and a worker never holds (and delays) more than it can start.
When the last item of a chunk has its outcome, a recording task of its own records the
chunk's outcomes in one store call, which checks the fence (a worker that lost the
chunk records nothing); the revoking task goes on with the next item meanwhile. A
heartbeat task extends the leases of the chunks held; a lost one is abandoned at once.

Revoking reuses `revoke_many`'s single-id rules (`bulk.revoke_telling`) and, for user
ids, `revoke_all`; each item's outcome is counted in ``clerk.jobs.items`` (`_metrics`).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Sequence,
)
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, TypeVar, cast

import anyio
import anyio.lowlevel

from clerk_sessions import _revocation as bulk
from clerk_sessions._config import UNSET
from clerk_sessions._errors import (
    APIConnectionError,
    AuthenticationError,
    ClerkErrors,
    ClerkSessionsError,
    PermissionDeniedError,
    SDKError,
)
from clerk_sessions.jobs._metrics import counted
from clerk_sessions.jobs._store import (
    Claim,
    ItemKind,
    JobDataLost,
    JobInfo,
    JobStore,
    JobStoreError,
    open_store,
)
from clerk_sessions.models import (
    CONNECTION_ERROR_CODE,
    BulkRevokeResult,
    ItemOutcome,
    JobStatus,
    SessionStatus,
)

if TYPE_CHECKING:
    from types import TracebackType

    from clerk_sessions._client import AsyncClerk
    from clerk_sessions._resources.sessions import AsyncSessions

__all__ = ["RevocationJob"]

logger = logging.getLogger("clerk_sessions.jobs")

ProgressCallback = Callable[[int, int], object]
_T = TypeVar("_T")

#: The longest job name accepted.
MAX_NAME_LENGTH = 200
#: The longest id accepted (Clerk's ids are about 32 characters).
MAX_ID_LENGTH = 256
# A session that is already signed out counts as revoked.
_DONE_STATUSES = (SessionStatus.REVOKED, SessionStatus.ENDED)
# Errors that would fail every item the same way: stop working instead of recording them.
_FATAL = (AuthenticationError, PermissionDeniedError)
# How much of an error message an outcome keeps.
_MESSAGE_CHARS = 500
# The longest wait between two claims while other workers hold the remaining chunks.
_MAX_POLL_S = 1.0
# How long an interrupted worker tries to give its chunks back.
_RELEASE_TIMEOUT_S = 5.0
# Leases are renewed this many times per lease...
_HEARTBEATS_PER_LEASE = 3
# ...which takes a lease this many times the store's answer time (a chunk is claimed,
# its first renewal comes a third of a lease later, and the renewals of the chunks held
# run one after the other).
_LEASE_PER_ANSWER = 6


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
        from clerk_sessions._client import AsyncClerk

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
        worker = _Worker(
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
            if not _gone(exc):
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


def _gone(exc: Exception) -> bool:
    """Whether ``exc`` says that the store lost the job's data, or no longer has the job
    (a store's `LookupError`; a `KeyError` or `IndexError` is a bug, not that)."""
    return isinstance(exc, JobDataLost) or (
        isinstance(exc, LookupError) and not isinstance(exc, (KeyError, IndexError))
    )


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


def _failure(exc: Exception, *, sessions_revoked: int | None = None) -> ItemOutcome:
    """The outcome of an item that ``exc`` failed."""
    status_code: int | None = None
    error_code: str | None
    if isinstance(exc, ClerkErrors):
        status_code = exc.status_code
        error_code = exc.errors[0].code if exc.errors else None
    elif isinstance(exc, SDKError):
        status_code = exc.status_code
        error_code = "unexpected_response"
    elif isinstance(exc, APIConnectionError):
        error_code = CONNECTION_ERROR_CODE
    elif isinstance(exc, ValueError):
        # An id that cannot be a path segment ("." or "..").
        error_code = "invalid_id"
    else:
        error_code = _snake(type(exc).__name__)
    return ItemOutcome(
        ok=False,
        status_code=status_code,
        error_code=error_code,
        message=str(exc)[:_MESSAGE_CHARS],
        sessions_revoked=sessions_revoked,
    )


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


async def _session_outcome(sessions: AsyncSessions, session_id: str) -> ItemOutcome:
    try:
        _, revoked_now = await bulk.revoke_telling(
            sessions, session_id, retries=UNSET, done_statuses=_DONE_STATUSES
        )
    except _FATAL:
        raise
    except (ClerkSessionsError, ValueError) as exc:
        return counted(_failure(exc))
    return counted(ItemOutcome(ok=True), already=not revoked_now)


async def _user_outcome(sessions: AsyncSessions, user_id: str) -> ItemOutcome:
    try:
        result = await bulk.revoke_all(
            sessions,
            user_id=user_id,
            client_id=None,
            concurrency=1,
            on_progress=None,
            retries=UNSET,
        )
    except _FATAL:
        raise
    except ClerkSessionsError as exc:
        partial: BulkRevokeResult | None = getattr(exc, bulk.RESULT_ATTRIBUTE, None)
        revoked = 0 if partial is None else len(partial.revoked)
        return counted(_failure(exc, sessions_revoked=revoked))
    if result.failed:
        first = next(iter(result.failed.values()))
        if isinstance(first, _FATAL):
            raise first
        return counted(_failure(first, sessions_revoked=len(result.revoked)))
    revoked = len(result.revoked)
    return counted(ItemOutcome(ok=True, sessions_revoked=revoked), already=not revoked)


class _Held:
    """A chunk this worker holds: its claim and the outcomes gathered so far."""

    __slots__ = ("claim", "finishing", "lost", "outcomes")

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.outcomes: dict[str, ItemOutcome] = {}
        self.lost = False
        self.finishing = False


class _Worker:
    """One `RevocationJob.work` call."""

    def __init__(
        self,
        store: JobStore,
        info: JobInfo,
        sessions: AsyncSessions,
        concurrency: int,
        lease_s: float,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.store = store
        self.name = info.name
        self.outcome = _user_outcome if info.kind is ItemKind.USER else _session_outcome
        self.sessions = sessions
        self.concurrency = concurrency
        self.lease_s = lease_s
        self.on_progress = on_progress
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.held: dict[str, _Held] = {}
        self.error: Exception | None = None
        self.warned_slow = False
        self.outer = anyio.CancelScope()
        # The items of the claimed chunk not yet handed out. The next chunk is claimed
        # when the last one is handed out (its requests still run meanwhile): a worker
        # never holds a chunk it could start later, so a crash repeats little.
        self.queue: deque[tuple[_Held, str]] = deque()
        self.wanted = anyio.Event()  # set by a revoking task when the queue runs empty
        self.available = anyio.Event()  # set (and replaced) when items are queued
        self.exhausted = False
        self.completed: deque[_Held] = deque()  # chunks to record, for `record`
        self.complete = anyio.Event()  # set when `completed` gets a chunk

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as outer:
                self.outer = outer.cancel_scope
                outer.start_soon(self.guarded, self.heartbeats)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.guarded, self.feed)
                    tg.start_soon(self.guarded, self.record)
                    for _ in range(self.concurrency):
                        tg.start_soon(self.guarded, self.revoke_items)
                outer.cancel_scope.cancel()
            if self.error is not None:
                raise self.error
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_RELEASE_TIMEOUT_S):
                await self.release_all()
            raise

    async def guarded(self, task: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run ``task``; its exception stops every task and is raised by `run` as it is
        (not wrapped in an exception group)."""
        try:
            await task(*args)
        except Exception as exc:
            if self.error is None:
                self.error = exc
            self.outer.cancel()

    async def feed(self) -> None:
        poll_s = min(_MAX_POLL_S, self.lease_s / 4)
        try:
            while True:
                while self.queue:
                    await self.wanted.wait()
                    self.wanted = anyio.Event()
                claim = await self.timed(self.store.claim(self.name, self.id, self.lease_s))
                if claim is None:
                    if (await self.store.status(self.name)).done:
                        return
                    await anyio.sleep(poll_s)
                    continue
                held = self.held[claim.chunk_id] = _Held(claim)
                if not claim.items:
                    await self.finish(held)
                    continue
                self.queue.extend((held, item) for item in claim.items)
                self.available.set()
                self.available = anyio.Event()
        finally:
            self.exhausted = True
            self.available.set()
            self.complete.set()

    async def revoke_items(self) -> None:
        queue = self.queue
        while True:
            if not queue:
                if self.exhausted:
                    return
                await self.available.wait()
                continue
            held, item = queue.popleft()
            if not queue:
                self.wanted.set()
            if held.lost:
                continue
            outcome = await self.outcome(self.sessions, item)
            if held.lost:
                continue
            held.outcomes[item] = outcome
            if len(held.outcomes) == len(held.claim.items):
                self.completed.append(held)
                self.complete.set()

    async def record(self) -> None:
        """Record the chunks whose every item has its outcome, one store call each: a
        task of its own, so that no revoking task idles while the store writes."""
        completed = self.completed
        while True:
            if completed:
                await self.finish(completed.popleft())
            elif self.exhausted:
                return
            else:
                await self.complete.wait()
                self.complete = anyio.Event()

    async def finish(self, held: _Held) -> None:
        held.finishing = True
        recorded = await self.timed(self.store.complete(self.name, held.claim, held.outcomes))
        self.held.pop(held.claim.chunk_id, None)
        if not recorded:
            if not held.lost:
                self.lose(held)
            return
        if self.on_progress is not None:
            status = await self.store.status(self.name)
            self.on_progress(status.revoked + status.failed, status.total)

    async def timed(self, call: Awaitable[_T]) -> _T:
        """``call``, warning once when the store answers too slowly for the lease."""
        started = anyio.current_time()
        try:
            return await call
        finally:
            elapsed = anyio.current_time() - started
            # A heartbeat every third of the lease, each as slow as this: leases run out
            # under healthy workers, and their chunks are taken over and sent again.
            if elapsed > self.lease_s / _HEARTBEATS_PER_LEASE and not self.warned_slow:
                self.warned_slow = True
                logger.warning(
                    "job %r: the store took %.1f s to answer, more than a third of the "
                    "%g s lease: chunks may be taken over from healthy workers and their "
                    "requests sent again; give a lease of at least %.0f s",
                    self.name,
                    elapsed,
                    self.lease_s,
                    math.ceil(_LEASE_PER_ANSWER * elapsed),
                )

    def lose(self, held: _Held) -> None:
        held.lost = True
        self.held.pop(held.claim.chunk_id, None)
        logger.warning(
            "job %r: lost the lease of chunk %s (another worker took it over, or the "
            "store lost it); its outcomes are not recorded by this worker",
            self.name,
            held.claim.chunk_id,
        )

    async def heartbeats(self) -> None:
        while True:
            await anyio.sleep(self.lease_s / _HEARTBEATS_PER_LEASE)
            for held in list(self.held.values()):
                if held.lost or held.finishing:
                    continue
                try:
                    holds = await self.timed(
                        self.store.heartbeat(self.name, held.claim, self.lease_s)
                    )
                except Exception as exc:
                    if _gone(exc):
                        raise  # the job's data is gone: the work stops, saying so
                    # The lease may still hold until its end; if it does not, the
                    # fencing keeps this worker from recording anything.
                    logger.warning("job %r: heartbeat failed: %s", self.name, exc)
                    continue
                if not holds and not held.finishing:
                    self.lose(held)

    async def release_all(self) -> None:
        for held in list(self.held.values()):
            try:
                await self.store.release(self.name, held.claim)
            except Exception as exc:
                if _gone(exc):
                    return  # nothing to give back, and work says why
                logger.warning(
                    "job %r: could not give back chunk %s (its lease will expire): %s",
                    self.name,
                    held.claim.chunk_id,
                    exc,
                )
