"""The worker loop of `RevocationJob.work`, and the outcome of each item it revokes.

The worker (`Worker`) holds a few claimed chunks at a time. One feeder task claims a
chunk and queues its items for ``concurrency`` revoking tasks; it claims the next chunk
when the last item is taken, while those requests run: requests stay at ``concurrency``
across chunk boundaries, and a worker never holds (and delays) more than it can start.
When the last item of a chunk has its outcome, a recording task of its own records the
chunk's outcomes in one store call, which checks the fence (a worker that lost the
chunk records nothing); the revoking task goes on with the next item meanwhile. A
heartbeat task extends the leases of the chunks held; a lost one is abandoned at once.

Revoking reuses `revoke_many`'s single-id rules (`bulk.revoke_telling`) and, for user
ids, `revoke_all` (`_session_outcome`, `_user_outcome`); each item's outcome is counted
in ``clerk.jobs.items`` (`_metrics`).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from clerk_sessions import UNSET
from clerk_sessions import _revocation as bulk
from clerk_sessions.errors import (
    APIConnectionError,
    AuthenticationError,
    ClerkErrors,
    ClerkSessionsError,
    PermissionDeniedError,
    SDKError,
)
from clerk_sessions.jobs._metrics import counted
from clerk_sessions.jobs._store import Claim, ItemKind, JobInfo, JobStore, gone
from clerk_sessions.models import (
    CONNECTION_ERROR_CODE,
    BulkRevokeResult,
    ItemOutcome,
    SessionStatus,
)

__all__ = ["ProgressCallback", "Worker"]

logger = logging.getLogger("clerk_sessions.jobs")

ProgressCallback = Callable[[int, int], object]
_T = TypeVar("_T")

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


async def _session_outcome(sessions: bulk.Sessions, session_id: str) -> ItemOutcome:
    try:
        _, revoked_now = await bulk.revoke_telling(
            sessions, session_id, retries=UNSET, done_statuses=_DONE_STATUSES
        )
    except _FATAL:
        raise
    except (ClerkSessionsError, ValueError) as exc:
        return counted(_failure(exc))
    return counted(ItemOutcome(ok=True), already=not revoked_now)


async def _user_outcome(sessions: bulk.Sessions, user_id: str) -> ItemOutcome:
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


class Worker:
    """One `RevocationJob.work` call."""

    def __init__(
        self,
        store: JobStore,
        info: JobInfo,
        sessions: bulk.Sessions,
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
        self.revoking = 0  # revoking tasks still running: `record` outlives them

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as outer:
                self.outer = outer.cancel_scope
                outer.start_soon(self.guarded, self.heartbeats)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.guarded, self.feed)
                    tg.start_soon(self.guarded, self.record)
                    self.revoking = self.concurrency
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
        try:
            await self.revoke_queued()
        finally:
            self.revoking -= 1
            self.complete.set()

    async def revoke_queued(self) -> None:
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
        task of its own, so that no revoking task idles while the store writes. It ends
        after the last revoking task: the feeder may stop (the job is done elsewhere)
        while a chunk's last requests still run, and that chunk is recorded too (or,
        taken over, refused and reported lost), never dropped unsaid."""
        completed = self.completed
        while True:
            if completed:
                await self.finish(completed.popleft())
            elif self.exhausted and not self.revoking:
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
                    if gone(exc):
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
                if gone(exc):
                    return  # nothing to give back, and work says why
                logger.warning(
                    "job %r: could not give back chunk %s (its lease will expire): %s",
                    self.name,
                    held.claim.chunk_id,
                    exc,
                )
