"""asyncio's own locks and events under the SDK's pool, in place of httpcore's anyio ones.

Why: on asyncio, httpcore builds every lock, event and cancellation shield of its pool
through anyio, and the first of them makes anyio import its asyncio backend: 64 modules,
the largest single cost of a process's first request after the SSL context (measured in
a bare install, `benchmarks/bench_cold.py`; see "Cold start" in docs/benchmarks.md). A
CLI or a serverless function pays it on every start, for primitives asyncio has itself.

What changes, for the pool the SDK builds itself and only while running on asyncio
(`clerk_sessions._pool.ReclaimingConnectionPool` with ``asyncio_primitives``):

- the per-connection locks (``_request_lock``, and HTTP/1.1's ``_state_lock``) are
  ``asyncio.Lock``; httpcore only ever enters them with ``async with``;
- the event a queued request waits on is `AsyncioEvent`, with httpcore's semantics:
  ``wait(timeout)`` raises ``httpcore.PoolTimeout`` when no connection came in time;
- the shields around closing a response and closing connections are skipped while
  anyio's asyncio backend is not loaded. On asyncio an anyio shield stops only anyio's
  own cancellation (a plain ``task.cancel()`` goes through it, which a test shows), and
  anyio has no cancel scope before that backend is loaded: every scope is made by it, and
  a task can only be inside a scope it entered before. Once anyio is in use in the
  process, httpcore's own shield is used, as before.

httpcore's error paths (a call cancelled or failing while its request is under way)
still build anyio shields; they load the backend when they first happen.

The code reads httpcore internals of the range pyproject.toml pins (1.0.3 to 1.0.9,
which are alike here). Where an attribute is missing, nothing is swapped and httpcore's
own primitive stays. This module imports nothing from the SDK.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpcore
import sniffio
from httpcore._async.connection_pool import PoolByteStream  # none of the three is exported
from httpcore._synchronization import AsyncEvent as _HttpcoreEvent
from httpcore._synchronization import AsyncLock as _HttpcoreLock

__all__ = [
    "AsyncioEvent",
    "give_asyncio_event",
    "give_asyncio_locks",
    "on_asyncio",
    "shield_can_matter",
    "shieldless_stream",
]

# The module anyio makes every cancel scope with on asyncio (a test checks that creating
# one loads it, so an anyio that moves it fails that test rather than a user's request).
ANYIO_ASYNCIO_BACKEND = "anyio._backends._asyncio"


def on_asyncio() -> bool:
    """Whether the running async library is asyncio (sniffio's answer, as httpcore's)."""
    try:
        return sniffio.current_async_library() == "asyncio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


def shield_can_matter() -> bool:
    """Whether httpcore's cancellation shield could stop anything here and now.

    Only on asyncio before anyio's asyncio backend is loaded is the answer no: no anyio
    cancel scope can exist yet, and a shield does not stop asyncio's own cancellation.
    """
    return ANYIO_ASYNCIO_BACKEND in sys.modules or not on_asyncio()


class AsyncioEvent:
    """httpcore's ``AsyncEvent`` (what a queued request waits on), on asyncio futures.

    A timeout is one timer on the waiter's future: no cancel scope, no task
    cancellation, so the waiter's own cancellation (from anyio or asyncio) passes
    through untouched.
    """

    __slots__ = ("_is_set", "_waiters")

    def __init__(self) -> None:
        self._is_set = False
        self._waiters: list[asyncio.Future[None]] = []

    def set(self) -> None:
        self._is_set = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def is_set(self) -> bool:
        return self._is_set

    async def wait(self, timeout: float | None = None) -> None:
        if self._is_set:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if timeout is None else loop.call_later(max(timeout, 0.0), _wake, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.remove(waiter)
        if not self._is_set:
            raise httpcore.PoolTimeout(
                f"no connection of the pool became free within the pool timeout ({timeout} s)"
            )


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def give_asyncio_event(pool_request: object) -> None:
    """On asyncio, give a pool request that nobody waits on yet an `AsyncioEvent`.

    httpcore's event is untouched once set up (waited on or set: its ``_backend`` is no
    longer empty), so a waiter never loses the event it waits on.
    """
    event = getattr(pool_request, "_connection_acquired", None)
    # The cheap checks first: a request that already has its event (every later pass
    # over it) costs a type check, and the library is asked once per request.
    if type(event) is _HttpcoreEvent and not getattr(event, "_backend", "x") and on_asyncio():
        pool_request._connection_acquired = AsyncioEvent()  # type: ignore[attr-defined]


def _give_lock(owner: object, name: str) -> None:
    lock = getattr(owner, name, None)
    if type(lock) is _HttpcoreLock and not getattr(lock, "_backend", "x"):
        setattr(owner, name, asyncio.Lock())


class _AsyncioHTTPConnection(httpcore.AsyncHTTPConnection):
    """httpcore's connection, which gives its HTTP/1.1 connection an asyncio lock.

    httpcore builds that connection inside ``handle_async_request`` and takes its lock
    at once, so the only place to swap the lock first is the assignment itself: this
    property. The value lives in the instance's ``__dict__``, where httpcore's
    ``__init__`` put it.
    """

    @property
    def _connection(self) -> Any:
        return self.__dict__["_connection"]

    @_connection.setter
    def _connection(self, inner: Any) -> None:  # pyright: ignore[reportIncompatibleVariableOverride]
        if type(inner) is httpcore.AsyncHTTP11Connection:
            _give_lock(inner, "_state_lock")
        self.__dict__["_connection"] = inner


def give_asyncio_locks(connection: object) -> None:
    """Swap the locks of a connection the pool just created (a plain HTTP connection)."""
    if type(connection) is not httpcore.AsyncHTTPConnection or "_connection" not in vars(
        connection
    ):
        return
    _give_lock(connection, "_request_lock")
    connection.__class__ = _AsyncioHTTPConnection


class _ShieldlessPoolByteStream(PoolByteStream):
    """httpcore's response stream of a pool, closed without a shield that can't matter.

    The body is httpcore's ``PoolByteStream.aclose`` (the same in 1.0.3 to 1.0.9) minus
    the shield; whenever a shield could matter, httpcore's own runs instead.
    """

    async def aclose(self) -> None:
        if self._closed or shield_can_matter():
            await super().aclose()
            return
        self._closed = True
        stream: Any = self._stream
        if hasattr(stream, "aclose"):
            await stream.aclose()
        pool: Any = self._pool  # its internals, as httpcore's own aclose uses them
        with pool._optional_thread_lock:
            pool._requests.remove(self._pool_request)
            closing = pool._assign_requests_to_connections()
        await pool._close_connections(closing)


def shieldless_stream(response: httpcore.Response) -> httpcore.Response:
    """Let the response of a pool close without httpcore's shield where it can't matter."""
    if type(response.stream) is PoolByteStream:
        response.stream.__class__ = _ShieldlessPoolByteStream
    return response
