"""The portal: the event loop thread on which the sync `Clerk` runs `AsyncClerk`.

One `Portal` per `Clerk`. It is started lazily (behind a thread lock) on the first call:
an anyio blocking portal on the asyncio backend, kept open by entering its context
manager, and an `AsyncClerk` built on that loop, so its HTTP client (and the
connection pool in it) only ever lives on the loop that will use it. ``close()`` closes
the client on that loop, then exits the portal's context manager, which stops the loop
and joins its thread.

anyio's ``BlockingPortalProvider`` is not used on purpose: when its last lease ends it
stops the loop, and an ``httpx2.AsyncClient`` cannot outlive the loop it was used on.

Why calls do not go through ``BlockingPortal.call``: anyio wraps each call in a task
group, a cancel scope and two futures, which is most of the cost of a portal hop on a
fast local server. A call here is one `_Call`: a handle scheduled with
``call_soon_threadsafe`` that starts a task, and a plain lock the caller blocks on until
the task's done-callback releases it. Cancellation stays exact: on any `BaseException`
while waiting (Ctrl-C), the task is cancelled on its loop and the caller waits briefly
for it to finish before re-raising. With the fast paths off (`_config.FAST_PATHS`), calls
go through ``BlockingPortal.start_task_soon`` instead, with the same cancellation.

Fork safety: a child process inherits the portal's objects but not its thread. Every
live portal is reset in the child (``os.register_at_fork``), so the next call there
starts a new loop, thread and connection pool. The parent's objects are kept, untouched,
for the child's lifetime: closing them from the child could run the portal's shutdown
(which waits for a thread that does not exist) or change the parent's epoll set, which
the child shares.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import logging
import os
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio.from_thread

from clerk_sessions._config import FAST_PATHS
from clerk_sessions._errors import AsyncContextError, ClientClosedError
from clerk_sessions._eventloop import thread_runs_event_loop

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

    from clerk_sessions._client import AsyncClerk

__all__ = ["Portal"]

logger = logging.getLogger("clerk_sessions")

T = TypeVar("T")

# How long a cancelled call may take to unwind before the caller re-raises anyway.
_CANCEL_GRACE_S = 2.0


class _Call(Generic[T]):
    """One coroutine run on the portal's loop for a blocked caller thread, in a copy of
    the caller's context: what the caller's context variables hold (its current
    OpenTelemetry span, so the call's spans are its children) holds in the call too."""

    __slots__ = ("context", "coro", "done", "error", "result", "task")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self.coro = coro
        self.context = contextvars.copy_context()
        self.done = threading.Lock()
        self.done.acquire()
        self.task: asyncio.Task[T] | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        """On the loop: run the coroutine as a task."""
        self.task = task = asyncio.get_running_loop().create_task(self.coro, context=self.context)
        task.add_done_callback(self._finish)

    def _finish(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():
            # Not by this call's caller (it re-raises its own interrupt): the loop is
            # shutting down because another thread closed the client.
            self.error = ClientClosedError("the Clerk was closed while this call was running")
        else:
            self.error = task.exception()
            if self.error is None:
                self.result = task.result()
        self.done.release()

    def cancel(self) -> None:
        """On the loop: cancel the task (the request in flight is abandoned)."""
        if self.task is not None:
            self.task.cancel()


class _Running:
    """What a started portal holds: the loop, the client on it, and how to stop both."""

    __slots__ = ("client", "exit_stack", "loop", "portal")

    def __init__(
        self,
        exit_stack: contextlib.ExitStack,
        portal: BlockingPortal,
        loop: asyncio.AbstractEventLoop,
        client: AsyncClerk,
    ) -> None:
        self.exit_stack = exit_stack
        self.portal = portal
        self.loop = loop
        self.client = client


# Every portal that may own a thread, so that a forked child can reset them all.
_live: weakref.WeakSet[Portal] = weakref.WeakSet()
# A child's inherited copies of its parent's running portals: kept, never touched.
_inherited: list[_Running] = []


def _shut_down(running: _Running) -> None:
    """Close the client on its loop, then stop the loop and join its thread."""
    try:
        running.portal.call(running.client.aclose)
    finally:
        running.exit_stack.close()


def _close_abandoned(running: _Running) -> None:
    # A Clerk dropped without close(): its loop thread would run (holding connections)
    # for the life of the process. This may run in any thread, the portal's own
    # included, where waiting for the loop would deadlock: a short thread does it.
    warnings.warn(
        "a clerk_sessions.Clerk was garbage-collected without close(); use it as a "
        "context manager, or create one per process and close it at shutdown",
        ResourceWarning,
        stacklevel=2,
    )
    threading.Thread(
        target=_shut_down_quietly, args=(running,), name="clerk-portal-closer", daemon=True
    ).start()


def _shut_down_quietly(running: _Running) -> None:
    try:
        _shut_down(running)
    except Exception:  # nobody is left to tell but the log
        logger.debug("closing an abandoned Clerk failed", exc_info=True)


def _close_all_at_exit() -> None:
    # A Clerk nobody closed (a script's module-level client, a gunicorn worker's) must
    # not hang the interpreter's exit. Left alone, its portal's context manager is
    # finalized during shutdown, after daemon threads (the loop's) have stopped running,
    # and waits for the loop forever. atexit callbacks run while they still do.
    for portal in list(_live):
        try:
            portal.close()
        except Exception:  # one broken portal must not keep the others open
            logger.debug("closing a Clerk at exit failed", exc_info=True)


atexit.register(_close_all_at_exit)


def _reset_after_fork() -> None:
    for portal in list(_live):
        portal._reset_in_child()  # pyright: ignore[reportPrivateUsage]


os.register_at_fork(after_in_child=_reset_after_fork)


def _refuse_in_async_context() -> None:
    if thread_runs_event_loop():
        raise AsyncContextError(
            "the sync Clerk was called from a running event loop, where it would block "
            "every other task; use AsyncClerk there and await its methods"
        )


def _claim_loop_thread() -> asyncio.AbstractEventLoop:
    # Named here rather than through start_blocking_portal(name=...), which older anyio
    # 4.x releases lack; the name lets people (and tests) spot the thread.
    threading.current_thread().name = "clerk-portal"
    return asyncio.get_running_loop()


def _call_through_anyio(running: _Running, fn: Callable[[AsyncClerk], Coroutine[Any, Any, T]]) -> T:
    """`Portal.call` on anyio's own call path (the fast paths are off)."""
    future: concurrent.futures.Future[T] = running.portal.start_task_soon(fn, running.client)
    try:
        return future.result()
    except BaseException:
        if not future.done():  # interrupted while waiting: cancel the task, let it unwind
            future.cancel()
            concurrent.futures.wait([future], timeout=_CANCEL_GRACE_S)
        raise


async def _anext(aiter: AsyncIterator[T]) -> T:
    # `__anext__` may return any awaitable; a task needs a coroutine.
    return await aiter.__anext__()


class Portal:
    """Runs one `AsyncClerk`'s coroutines for sync callers, on a loop in its own thread.

    ``factory`` builds the `AsyncClerk`; it runs on the portal's thread whenever a new
    loop starts (the first call, and the first call in a forked child). ``client`` is
    a first instance built eagerly by the caller so that bad settings raise at once.
    """

    def __init__(self, factory: Callable[[], AsyncClerk]) -> None:
        self._factory = factory
        # Built here so that bad settings raise in the constructor; it is first used on
        # the portal's loop (building one opens no connection and binds no loop).
        self._client: AsyncClerk | None = factory()
        self._lock = threading.Lock()
        self._running: _Running | None = None
        self._closed = False
        # Closes a started portal whose Clerk is dropped without close() (see _start).
        self._finalizer: weakref.finalize[Any, Any] | None = None
        _live.add(self)

    @property
    def client(self) -> AsyncClerk:
        """The `AsyncClerk` the portal runs (for settings: never call it from here)."""
        if self._client is None:
            return self._start().client
        return self._client

    def _start(self) -> _Running:
        with self._lock:
            if self._running is not None:
                return self._running
            if self._closed:
                raise ClientClosedError("this Clerk is closed; create a new one")
            with contextlib.ExitStack() as stack:
                portal = stack.enter_context(anyio.from_thread.start_blocking_portal("asyncio"))
                loop = portal.call(_claim_loop_thread)
                client = self._client if self._client is not None else portal.call(self._factory)
                self._client = client
                running = self._running = _Running(stack.pop_all(), portal, loop, client)
            self._finalizer = weakref.finalize(self, _close_abandoned, running)
            self._finalizer.atexit = False  # exit is _close_all_at_exit's job, quietly
            return running

    def call(self, fn: Callable[[AsyncClerk], Coroutine[Any, Any, T]]) -> T:
        """Run ``fn(client)`` on the portal's loop and return its result.

        Its exceptions reach the caller as they are, with the caller's frames added to
        the traceback. Any exception while waiting (``KeyboardInterrupt``) cancels the
        task and waits for it to unwind before it propagates.
        """
        _refuse_in_async_context()
        running = self._running or self._start()
        if not FAST_PATHS:
            return _call_through_anyio(running, fn)
        call = _Call(fn(running.client))
        running.loop.call_soon_threadsafe(call.start, context=call.context)
        try:
            call.done.acquire()
        except BaseException:
            running.loop.call_soon_threadsafe(call.cancel)
            call.done.acquire(timeout=_CANCEL_GRACE_S)
            raise
        error = call.error
        if error is not None:
            call.error = None  # no reference cycle through the traceback
            raise error
        return call.result

    def iterate(self, aiter: AsyncIterator[T]) -> Iterator[T]:
        """A plain iterator over ``aiter``, one portal call per item.

        Stopping early (``break``, an exception, ``close()``, garbage collection) closes
        the async iterator on the portal.
        """
        try:
            while True:
                try:
                    item = self.call(lambda _: _anext(aiter))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(aiter, "aclose", None)
            if aclose is not None and self._running is not None:
                self.call(lambda _: aclose())

    def close(self) -> None:
        """Close the client on its loop, then stop the loop and join its thread.

        Idempotent. Later calls raise `ClientClosedError`.
        """
        _refuse_in_async_context()
        with self._lock:
            running, self._running = self._running, None
            self._closed = True
            if self._finalizer is not None:
                self._finalizer.detach()
        if running is None:
            return
        _shut_down(running)

    def _reset_in_child(self) -> None:
        # Runs in a forked child, where only the forking thread exists: the lock may be
        # held by a thread that is gone, and the loop's thread is gone too.
        self._lock = threading.Lock()
        if self._finalizer is not None:
            self._finalizer.detach()  # the parent's loop is not this process's to close
            self._finalizer = None
        if self._running is not None:
            _inherited.append(self._running)
            self._running = None
            # The parent's pool and sockets stay with the parent; the child builds its own.
            self._client = None

    def derive(self, make: Callable[[AsyncClerk], AsyncClerk]) -> Portal:
        """A portal for a client derived from this one's (``Clerk.with_options``)."""
        return _DerivedPortal(self, make)


class _DerivedPortal(Portal):
    """A derived client's view of its parent's portal: the same loop thread, the same
    connection pool, a client made from the parent's by ``make``.

    The derived `AsyncClerk` is made again whenever the parent's changes (in a forked
    child, the parent builds a new one), so it always shares the live pool. Closing it
    closes nothing: the loop and the pool are the parent's.
    """

    def __init__(self, parent: Portal, make: Callable[[AsyncClerk], AsyncClerk]) -> None:
        # Not Portal.__init__: this portal owns no thread, so it is not in `_live`.
        self._parent = parent
        self._make = make
        self._made: tuple[AsyncClerk, AsyncClerk] | None = None
        self._derived_from(parent.client)  # bad settings raise here, at once

    def _derived_from(self, parent_client: AsyncClerk) -> AsyncClerk:
        made = self._made
        if made is None or made[0] is not parent_client:
            # Racing threads may both make one: they are equal, and making opens nothing.
            made = self._made = (parent_client, self._make(parent_client))
        return made[1]

    @property
    def client(self) -> AsyncClerk:
        return self._derived_from(self._parent.client)

    def call(self, fn: Callable[[AsyncClerk], Coroutine[Any, Any, T]]) -> T:
        return self._parent.call(lambda parent_client: fn(self._derived_from(parent_client)))

    def iterate(self, aiter: AsyncIterator[T]) -> Iterator[T]:
        return self._parent.iterate(aiter)

    def close(self) -> None:
        """Nothing to close: the parent's ``close()`` ends the loop and the pool."""

    def derive(self, make: Callable[[AsyncClerk], AsyncClerk]) -> Portal:
        return _DerivedPortal(
            self._parent, lambda parent_client: make(self._derived_from(parent_client))
        )
