"""The rules of bulk revocation: ``sessions.revoke_many``, ``sessions.revoke_all``, and
each item of a durable job (`clerk_sessions.jobs`).

They work on any object that revokes, gets and lists sessions (`Sessions`, the small
protocol below: `clerk_sessions._resources.sessions.AsyncSessions` is one), so this module
imports neither the resource nor the jobs that use it.

Worker model: ``concurrency`` worker tasks in one task group pull ids from the shared
input, one at a time, and each sends one ``revoke`` (with its retries) before pulling the
next. There is no task per id and no queue, so memory in flight is bounded by the
concurrency whatever the number of ids; what grows with the ids is only what the caller
asked for (the result maps) and, for inputs that are not collections, the set of ids
already seen, which "never revoke an id twice" needs.

Ledger: a failure is kept compact, without its traceback, chained causes, or the
response's body and headers (a traceback holds every frame of the failed call: with
them a failure cost about 15 KB), so a job of many failures stays small and its result
can be pickled.

Per-call options (``retries``, ``server_url``, ``timeout_ms``, ``http_headers``) arrive
checked, as the keywords every request of the run passes on.

Quota: nothing here counts requests. Every attempt goes through the client's transport,
which waits on the client's `RateLimit` (shared with every other call of the client) and
pauses it on a 429, so all workers hold until the ``Retry-After``, not only the one that
got it.
"""

from __future__ import annotations

from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
)
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, cast

import anyio

from clerk_sessions import models
from clerk_sessions._config import UNSET, RetryConfig, Unset
from clerk_sessions._errors import (
    ClerkErrors,
    ClerkSessionsError,
    ResponseValidationError,
    SDKError,
)
from clerk_sessions._options import call_options
from clerk_sessions._resources.operations import REVOKE_ALL, REVOKE_MANY
from clerk_sessions._telemetry import Operation, instruments
from clerk_sessions.models import QueryParamStatus, Session, SessionStatus

if TYPE_CHECKING:
    from clerk_sessions._http.transport import Transport

    # Defined on first use (clerk_sessions.models): this module loads with every client.
    from clerk_sessions.models import BulkRevokeResult

__all__ = [
    "RESULT_ATTRIBUTE",
    "BulkRevocation",
    "ProgressCallback",
    "Sessions",
    "check_concurrency",
    "check_progress",
    "failure_listener",
    "revoke_all",
    "revoke_many",
    "revoke_one",
    "revoke_telling",
]


class Sessions(Protocol):
    """What the bulk rules need of the sessions API: revoke, get, and list by page, each
    with the per-call options."""

    async def revoke(
        self,
        session_id: str,
        *,
        retries: RetryConfig | Unset | None = ...,
        server_url: str | None = ...,
        timeout_ms: int | None = ...,
        http_headers: Mapping[str, str] | None = ...,
    ) -> Session: ...

    async def get(
        self,
        session_id: str,
        *,
        retries: RetryConfig | Unset | None = ...,
        server_url: str | None = ...,
        timeout_ms: int | None = ...,
        http_headers: Mapping[str, str] | None = ...,
    ) -> Session: ...

    def iterate(
        self,
        *,
        client_id: str | None = ...,
        user_id: str | None = ...,
        status: QueryParamStatus | str | None = ...,
        page_size: int = ...,
        retries: RetryConfig | Unset | None = ...,
        server_url: str | None = ...,
        timeout_ms: int | None = ...,
        http_headers: Mapping[str, str] | None = ...,
    ) -> AsyncIterator[Session]: ...


ProgressCallback = Callable[[int, "int | None"], object]
"""``on_progress(done, total)``: ``total`` is None when the number of ids is not known."""

#: Called with each id that failed and its exception, as it fails, by the bulk calls
#: started where it is set: the command line's progress counts failures with it, which
#: ``on_progress(done, total)`` cannot say. A context variable, so the public methods keep
#: their signatures (and their spans); worker tasks see the value of the task that called.
failure_listener: ContextVar[Callable[[str, Exception], object] | None] = ContextVar(
    "clerk_sessions_failure_listener", default=None
)

#: The attribute under which an exception leaving a bulk call carries what was done.
RESULT_ATTRIBUTE = "bulk_result"

# Statuses with which an API may refuse to revoke a session that is no longer active. The
# fake (and the live API, as far as we know) answers 200 with the session unchanged; the
# spec also documents 400 for revoke, so a 400/422 is checked with a GET before it counts
# as a failure.
_REFUSAL_STATUSES = frozenset((400, 422))

# revoke_all lists with the largest page the API serves.
_PAGE_SIZE = 500
# revoke_all lists again until a listing shows no session it has not handled. Sessions
# created while it runs may keep that going; this bounds it.
_MAX_PASSES = 10


def check_concurrency(concurrency: object) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(f"concurrency must be an integer, got {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    return concurrency


def check_progress(on_progress: object) -> None:
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable, got {type(on_progress).__name__}")


def _not_an_id(item: object, where: str) -> TypeError:
    return TypeError(f"session ids must be strings, got {type(item).__name__} at {where}")


def _compact(exc: Exception) -> Exception:
    """``exc`` as the ledger keeps it: its type, message and attributes, minus the
    traceback, the chained exceptions and the response's body and headers (a CDN's
    headers alone are about 2 KB; ``clerk_trace_id`` and ``retry_after`` stay)."""
    exc.__traceback__ = None
    exc.__cause__ = None
    exc.__context__ = None
    if isinstance(exc, (ClerkErrors, SDKError)):
        exc.headers = {}
    if isinstance(exc, (ClerkErrors, SDKError, ResponseValidationError)):
        exc.body = b""
    return exc


def _attach(exc: BaseException, result: BulkRevokeResult) -> None:
    """Hand the ledger to the caller on an exception that leaves a bulk call."""
    setattr(exc, RESULT_ATTRIBUTE, result)


class _Ids:
    """The shared input: hands each worker the next id not handed out before.

    A sync iterator is drawn without awaiting, so no two workers can be inside it at
    once; an async iterator is drawn under a lock, because an async generator refuses a
    second ``__anext__`` while one is running.
    """

    def __init__(self, session_ids: object) -> None:
        if isinstance(session_ids, (str, bytes)):
            raise TypeError(
                "session_ids must be an iterable of ids, not a single id (use revoke())"
            )
        self.total: int | None = None
        self._seen: set[str] | None = set()
        self._sync: Iterator[object] | None = None
        self._async: AsyncIterator[object] | None = None
        self._lock = anyio.Lock()
        self.drawn = 0
        self.exhausted = False
        if isinstance(session_ids, Collection):
            # Checked whole before any request, and deduplicated once, so the total is
            # the number of distinct ids and no seen-set is needed.
            given = cast("Collection[object]", session_ids)
            for position, item in enumerate(given):
                if not isinstance(item, str):
                    raise _not_an_id(item, f"position {position}")
            unique: dict[str, None] = dict.fromkeys(cast("Collection[str]", given))
            self.total = len(unique)
            self._sync = iter(unique)
            self._seen = None
        elif isinstance(session_ids, AsyncIterable):
            self._async = aiter(cast("AsyncIterable[object]", session_ids))
        elif isinstance(session_ids, Iterable):
            self._sync = iter(cast("Iterable[object]", session_ids))
        else:
            raise TypeError(
                "session_ids must be an iterable or async iterable of strings, "
                f"got {type(session_ids).__name__}"
            )

    def _accept(self, item: object) -> str | None:
        """The id to revoke, or None for one already seen."""
        if not isinstance(item, str):
            raise _not_an_id(item, f"item {self.drawn}")
        if self._seen is not None:
            if item in self._seen:
                return None
            self._seen.add(item)
        return item

    async def next(self) -> str | None:
        """The next id to revoke; None when the input is exhausted."""
        if self._sync is not None:
            for item in self._sync:
                self.drawn += 1
                session_id = self._accept(item)
                if session_id is not None:
                    return session_id
            self.exhausted = True
            return None
        assert self._async is not None
        async with self._lock:
            while not self.exhausted:
                try:
                    item = await self._async.__anext__()
                except StopAsyncIteration:
                    self.exhausted = True
                    break
                self.drawn += 1
                session_id = self._accept(item)
                if session_id is not None:
                    return session_id
            return None


class _Run:
    """One ``revoke_many`` call: the ledger, and the reason to stop early, if any."""

    def __init__(
        self,
        sessions: Sessions,
        ids: _Ids,
        on_progress: ProgressCallback | None,
        options: Mapping[str, Any],
    ) -> None:
        self.sessions = sessions
        self.ids = ids
        self.on_progress = on_progress
        self.options = options
        self.revoked: dict[str, Session] = {}
        self.failed: dict[str, Exception] = {}
        self.error: Exception | None = None
        self.on_failure = failure_listener.get()

    def result(self) -> BulkRevokeResult:
        return models.BulkRevokeResult(revoked=self.revoked, failed=self.failed)

    async def worker(self) -> None:
        while self.error is None and not self.ids.exhausted:
            try:
                session_id = await self.ids.next()
            except Exception as exc:  # the caller's iterator failed, or gave a non-string
                self.stop(exc)
                return
            if session_id is None:
                return
            await self.revoke_one(session_id)

    def stop(self, exc: Exception) -> None:
        """Take no new id; the workers finish the ids they hold, then ``exc`` is raised."""
        if self.error is None:
            self.error = exc

    async def revoke_one(self, session_id: str) -> None:
        try:
            session = await revoke_one(self.sessions, session_id, **self.options)
        except Exception as exc:
            # Whatever one id raised (an API error, a bad id, a parser's or a library's
            # exception) is that id's outcome; the others still get their turn.
            self.failed[session_id] = _compact(exc)
            if self.on_failure is not None:
                self.on_failure(session_id, exc)
        else:
            self.revoked[session_id] = session
        self.progress()

    def progress(self) -> None:
        if self.on_progress is None or self.error is not None:
            return
        try:
            self.on_progress(len(self.revoked) + len(self.failed), self.ids.total)
        except Exception as exc:
            self.stop(exc)


async def revoke_one(
    sessions: Sessions,
    session_id: str,
    *,
    done_statuses: Collection[SessionStatus] = (SessionStatus.REVOKED,),
    **options: Any,
) -> Session:
    """Revoke one session by the bulk rules, and return it.

    A revoke the API refuses (400/422) counts as done when the session's status is in
    ``done_statuses`` (a GET tells); the refusal is raised otherwise. Any other failure
    is raised as it came (the durable jobs share this with `revoke_many`). ``options``
    are the per-call options (``retries``, ``server_url``, ...) of both requests.
    """
    session, _ = await revoke_telling(sessions, session_id, done_statuses=done_statuses, **options)
    return session


async def revoke_telling(
    sessions: Sessions,
    session_id: str,
    *,
    done_statuses: Collection[SessionStatus] = (SessionStatus.REVOKED,),
    **options: Any,
) -> tuple[Session, bool]:
    """`revoke_one`, also telling whether the session was active until this call: False
    when the API refused the revoke, or answered with a session that is not revoked (it
    had ended). An API that answers a revoke of a revoked session with that session, as
    Clerk's does, makes the two look alike: that counts as True."""
    try:
        session = await sessions.revoke(session_id, **options)
    except ClerkErrors as exc:
        if exc.status_code not in _REFUSAL_STATUSES:
            raise
        try:
            current = await sessions.get(session_id, **options)
        except ClerkSessionsError:
            raise exc from None
        if current.status not in done_statuses:
            raise
        return current, False
    return session, session.status == SessionStatus.REVOKED


async def revoke_many(
    sessions: Sessions,
    session_ids: Iterable[str] | AsyncIterable[str],
    *,
    concurrency: int,
    on_progress: ProgressCallback | None,
    **options: Any,
) -> BulkRevokeResult:
    """The implementation of `AsyncSessions.revoke_many` (see its docstring)."""
    check_concurrency(concurrency)
    check_progress(on_progress)
    ids = _Ids(session_ids)
    run = _Run(sessions, ids, on_progress, options)
    try:
        async with anyio.create_task_group() as tg:
            # No more workers than ids: a small list does not start idle tasks.
            workers = concurrency if ids.total is None else min(concurrency, ids.total)
            for _ in range(workers):
                tg.start_soon(run.worker)
    except BaseException as exc:
        # Cancelled (or interrupted): the in-flight requests were abandoned, so their ids
        # are in neither map; everything that finished is handed over on the exception.
        _attach(exc, run.result())
        raise
    if run.error is not None:
        _attach(run.error, run.result())
        raise run.error
    return run.result()


async def revoke_all(
    sessions: Sessions,
    *,
    user_id: str | None,
    client_id: str | None,
    concurrency: int,
    on_progress: ProgressCallback | None,
    **options: Any,
) -> BulkRevokeResult:
    """The implementation of `AsyncSessions.revoke_all` (see its docstring)."""
    if (user_id is None) == (client_id is None):
        raise TypeError("revoke_all() needs exactly one of user_id= or client_id=")
    check_concurrency(concurrency)
    check_progress(on_progress)
    handled: set[str] = set()
    revoked: dict[str, Session] = {}
    failed: dict[str, Exception] = {}

    def report(done: int, _total: int | None) -> object:
        assert on_progress is not None
        return on_progress(len(revoked) + len(failed) + done, len(handled))

    try:
        for _ in range(_MAX_PASSES):
            # List every active session first and revoke afterwards: revoking while
            # paging would shift the offset-based pages under the listing and skip
            # sessions. Anything a listing still missed (sessions that ended or were
            # created meanwhile also shift pages) shows up in the next listing.
            listing = sessions.iterate(
                user_id=user_id,
                client_id=client_id,
                status=QueryParamStatus.ACTIVE,
                page_size=_PAGE_SIZE,
                **options,
            )
            fresh = list(dict.fromkeys([s.id async for s in listing if s.id not in handled]))
            if not fresh:
                break
            handled.update(fresh)
            result = await revoke_many(
                sessions,
                fresh,
                concurrency=concurrency,
                on_progress=None if on_progress is None else report,
                **options,
            )
            revoked.update(result.revoked)
            failed.update(result.failed)
    except BaseException as exc:
        partial: BulkRevokeResult | None = getattr(exc, RESULT_ATTRIBUTE, None)
        if partial is not None:
            revoked.update(partial.revoked)
            failed.update(partial.failed)
        _attach(exc, models.BulkRevokeResult(revoked=revoked, failed=failed))
        raise
    return models.BulkRevokeResult(revoked=revoked, failed=failed)


async def _traced(
    operation: Operation, base_url: str, run: Awaitable[BulkRevokeResult]
) -> BulkRevokeResult:
    """``run`` under the bulk operation's span, the parent of its requests' spans."""
    telemetry = instruments()
    if telemetry is None:
        return await run
    bulk = telemetry.bulk(operation, base_url)
    try:
        result = await run
    except BaseException as exc:
        bulk.end(exc, getattr(exc, RESULT_ATTRIBUTE, None))
        raise
    bulk.end(None, result)
    return result


class BulkRevocation:
    """``revoke_many`` and ``revoke_all``: the bulk operations of ``clerk.sessions``
    (`clerk_sessions._resources.sessions.AsyncSessions` inherits them, and the sync facade
    has them as its own)."""

    # The resource's: its URL names the server in the bulk operations' spans.
    _transport: Transport

    async def revoke_many(
        self,
        session_ids: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int = 8,
        on_progress: Callable[[int, int | None], object] | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> BulkRevokeResult:
        """Revoke many sessions, at most ``concurrency`` requests at a time.

        ``session_ids`` is any iterable or async iterable of ids (a generator of a million
        ids is fine: ids are drawn as workers free up, so memory in flight is bounded by
        ``concurrency``). An id is never sent twice: duplicates are skipped, which means
        the distinct ids seen so far are kept (the ids only). Each request uses the retry
        policy (``retries``), the other per-call options, and the client's `RateLimit`,
        which a 429 pauses for every worker.

        Returns a `BulkRevokeResult` holding every distinct id exactly once: in
        ``revoked`` (id -> the `Session` as the API returned it) or in ``failed`` (id ->
        the exception its last attempt raised, once its retries ran out). A session
        that was already revoked counts as revoked; so does one that had already ended
        (the API answers the revoke with the session unchanged: it is signed out).

        Any exception one id raises is that id's failure, and the others go on. A
        failure is kept compact: without its traceback, chained exceptions or response
        body (``.body`` is empty), so 20,000 failures take a few MB and the result can be
        pickled.

        ``on_progress(done, total)`` is called after each id finishes; ``total`` is the
        number of distinct ids for a collection, None for an iterator.

        Errors and early stops:

        - Bad arguments raise before any request: ``concurrency`` not an integer >= 1,
          ``on_progress`` not callable, a single string instead of an iterable, a
          collection holding a non-string id (`TypeError`), or a bad per-call option.
        - If an iterator yields a non-string id (`TypeError`) or raises, or
          ``on_progress`` raises, no further id is started, the requests in flight
          finish, and that exception propagates with the result so far attached as its
          ``bulk_result`` attribute.
        - If the call is cancelled, the requests in flight are abandoned at once and the
          cancellation propagates, with the result so far attached the same way: the
          ids whose request was in flight are in neither map (the server may or may not
          have revoked them), and ids never drawn are not in it.
        """
        options = call_options(
            retries=retries, server_url=server_url, timeout_ms=timeout_ms, http_headers=http_headers
        )
        run = revoke_many(
            cast("Sessions", self),
            session_ids,
            concurrency=concurrency,
            on_progress=on_progress,
            **options,
        )
        return await _traced(REVOKE_MANY, server_url or self._transport.base_url, run)

    async def revoke_all(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        concurrency: int = 8,
        on_progress: Callable[[int, int | None], object] | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> BulkRevokeResult:
        """Revoke every active session of a user (``user_id=``) or of a client
        (``client_id=``); exactly one of them is required.

        Lists the active sessions, then revokes them with `revoke_many`, then lists
        again, until a listing shows no active session it has not handled (sessions that
        change while it pages shift the pages; listing again catches what they hid). A
        session that failed is not tried again. ``on_progress(done, total)`` counts
        across those rounds (``total`` is the number of sessions found so far). Errors,
        early stops and the result are as for `revoke_many`.
        """
        options = call_options(
            retries=retries, server_url=server_url, timeout_ms=timeout_ms, http_headers=http_headers
        )
        run = revoke_all(
            cast("Sessions", self),
            user_id=user_id,
            client_id=client_id,
            concurrency=concurrency,
            on_progress=on_progress,
            **options,
        )
        return await _traced(REVOKE_ALL, server_url or self._transport.base_url, run)
