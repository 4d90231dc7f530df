"""Event loops: which library runs the current task, which loop it is, and one object
per running loop.

The SDK runs on asyncio and trio. sniffio is not one of its dependencies, but every trio
is (trio depends on it): so while trio is not imported, the library is asyncio, and once
it is, sniffio answers.

`PerLoop` keeps one object per running event loop: opened on first use in that loop,
handed to every caller in it, closed when the loop ends (or by `PerLoop.aclose`); on
asyncio and trio.

Why: an object that holds connections (an `AsyncClerk`, a Redis client) belongs to the
event loop it first ran on, and must be closed on that loop. Code with a lifespan of its
own opens one there; code without one (a Django async view, an ASGI consumer, the shared
quota and the Redis job store, which any task of an application calls) runs on whatever
loop it is given: one for the whole process under uvicorn, a new one per request under
WSGI (asgiref's ``async_to_sync``), a loop thread of its own under the sync `Clerk`.
`PerLoop` gives such code one object per loop, shared by every task of that loop, and
closes it when the loop ends.

How the end of a loop is noticed, by the event loops' public behaviour only: each object
is entered (``async with``) and held by a task of its own on its loop, which waits until
it is cancelled, then exits the object, shielded from that cancellation:

- asyncio: ``asyncio.run``, ``asyncio.Runner``, asgiref's ``async_to_sync`` and uvicorn
  cancel the tasks still pending when their main coroutine returns, and wait for them
  before they close the loop;
- trio: a system task (``trio.lowlevel.spawn_system_task``) is cancelled once the main
  task has returned, and the run waits for it.

Entering and exiting in that one task suits objects that bind to the task that enters
them (anyio cancel scopes, coredis's connection pools). A loop that is closed without
cancelling its pending tasks (``loop.run_until_complete`` and ``loop.close()`` by hand)
never says it ended: its objects are not closed, only forgotten when the next loop opens
one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

import anyio

__all__ = ["PerLoop", "current_library", "event_loop", "thread_runs_event_loop"]

logger = logging.getLogger("clerk_sessions")

T = TypeVar("T")


def current_library() -> str:
    """``"asyncio"`` or ``"trio"``: the library of the running task."""
    if "trio" in sys.modules:
        import sniffio

        return sniffio.current_async_library()
    return "asyncio"


def event_loop() -> Hashable:
    """What identifies the running event loop: asyncio's loop, or trio's run (its token).

    Raises `RuntimeError` outside a running asyncio or trio loop.
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    if "trio" in sys.modules:
        import trio

        try:
            return trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
    raise RuntimeError("not in a running asyncio or trio event loop")


def thread_runs_event_loop() -> bool:
    """Whether this thread is running an event loop (where blocking would stall it).

    Not "is there an async context": a worker thread started with a copy of a loop's
    context (``asyncio.to_thread``, asgiref's ``sync_to_async``) runs no loop and may
    block freely. asyncio first (a C call, cheap on every sync call); trio marks the
    threads it runs in through sniffio's thread-local.
    """
    if asyncio._get_running_loop() is not None:
        return True
    if "trio" in sys.modules:
        import sniffio

        return bool(sniffio.thread_local.name)
    return False


class _Held(Generic[T]):
    """One loop's object, and the task that holds it open."""

    __slots__ = ("closed", "error", "generation", "manager", "ready", "stop", "value")

    def __init__(self, manager: AbstractAsyncContextManager[T], generation: int) -> None:
        self.manager = manager
        self.generation = generation
        self.ready = anyio.Event()  # entered, or failed to enter
        self.stop = anyio.Event()  # set by aclose: exit now, before the loop ends
        self.closed = anyio.Event()  # exited, or never entered: the task is done
        self.value: T | None = None
        self.error: Exception | None = None


class PerLoop(Generic[T]):
    """One object per running event loop, from ``open`` (an async context manager).

    ``await get()`` returns the running loop's object, opening it on first use: ``open()``
    is called in the caller (its errors are the caller's), and the object is entered and,
    once the loop ends, exited by a task of its own on that loop (see the module's
    docstring). Every later call on the same loop returns the same object.

    ``name`` says what the objects are, in the log record of an exit that failed.
    ``after_open(object)``, if given, is run by the holding task once the object is handed
    out: work on a new object that no caller should wait for (the shared quota's check of
    the Redis server's eviction policy). Its exceptions are logged, and the object stays.
    """

    def __init__(
        self,
        open: Callable[[], AbstractAsyncContextManager[T]],
        *,
        name: str,
        after_open: Callable[[T], Awaitable[object]] | None = None,
    ) -> None:
        self._open = open
        self._name = name
        self._after_open = after_open
        self._lock = threading.Lock()
        self._loops: dict[Hashable, _Held[T]] = {}
        self._generation = 0
        _INSTANCES.add(self)

    def __repr__(self) -> str:
        return f"PerLoop({self._name!r}, loops={len(self._loops)})"

    async def get(self) -> T:
        """The running loop's object, opened (and entered) on first use."""
        loop = event_loop()
        held = self._loops.get(loop)
        if held is None or held.generation != self._generation:
            # No await between the lookup and the registration: the tasks of one loop
            # cannot both open one. The lock is for the other threads' loops.
            held = _Held(self._open(), self._generation)
            with self._lock:
                self._forget_closed_loops()
                self._loops[loop] = held
            self._spawn(loop, held)
        if not held.ready.is_set():
            await held.ready.wait()
        if held.error is not None:
            raise held.error
        return held.value  # type: ignore[return-value]  # set whenever error is not

    async def aclose(self) -> None:
        """Close the running loop's object now, if it has one, and return once it is
        closed (an object still opening is closed once open); the next `get` on this loop
        opens a new one. The objects of other loops stay open until their loops end.

        Never raises for the object: an exit that fails is logged, as at a loop's end.
        """
        loop = event_loop()
        with self._lock:
            held = self._loops.pop(loop, None)
        if held is None:
            return
        held.stop.set()
        with anyio.CancelScope(shield=True):
            await held.closed.wait()

    def renew(self) -> None:
        """Open new objects from now on (e.g. after the settings they were made from
        changed). The ones already open stay open until their loop ends: a task may
        still be using one."""
        with self._lock:
            self._generation += 1

    def _spawn(self, loop: Hashable, held: _Held[T]) -> None:
        name = f"clerk-sessions: {self._name} of this event loop"
        if isinstance(loop, asyncio.AbstractEventLoop):
            task = loop.create_task(self._hold(loop, held), name=name)
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)
        else:
            import trio

            trio.lowlevel.spawn_system_task(self._hold, loop, held, name=name)

    async def _hold(self, loop: Hashable, held: _Held[T]) -> None:
        # Never raises: an exception of a trio system task would crash the whole run.
        try:
            # The exit is shielded from the loop's end by this scope, around the object
            # rather than inside it: an object whose enter opens a cancel scope (a
            # coredis pool's task group) must find that scope current when it exits.
            with anyio.CancelScope() as scope:
                try:
                    value = await held.manager.__aenter__()
                except Exception as exc:
                    held.error = exc
                    return
                held.value = value
                held.ready.set()
                try:
                    if self._after_open is not None:
                        await self._run_after_open(self._after_open, value)
                    await held.stop.wait()
                except BaseException as exc:
                    # The loop ends: its cancellation goes through the exit, as through
                    # ``async with`` (a task group there re-raises it, once closed).
                    scope.shield = True
                    await held.manager.__aexit__(type(exc), exc, exc.__traceback__)
                    raise
                scope.shield = True
                await held.manager.__aexit__(None, None, None)
        except Exception:
            ended = "" if held.stop.is_set() else " that ended"
            logger.warning(
                "closing the %s of an event loop%s failed", self._name, ended, exc_info=True
            )
        finally:
            held.ready.set()
            with self._lock:
                if self._loops.get(loop) is held:
                    del self._loops[loop]
            held.closed.set()

    async def _run_after_open(self, after_open: Callable[[T], Awaitable[object]], value: T) -> None:
        try:
            await after_open(value)
        except Exception:
            logger.warning(
                "the work that follows opening the %s of an event loop failed",
                self._name,
                exc_info=True,
            )

    def _forget_closed_loops(self) -> None:
        # Loops closed without cancelling their tasks never ran our exit: forget them,
        # rather than keep every such loop alive. (Called with the lock held.)
        for loop in [loop for loop in self._loops if _is_closed(loop)]:
            del self._loops[loop]

    def reset_after_fork(self) -> None:
        """Forget every loop's object, unclosed (called in a forked child, where the
        parent's loops do not run: their objects are not the child's)."""
        self._lock = threading.Lock()
        self._loops = {}


def _is_closed(loop: Hashable) -> bool:
    return isinstance(loop, asyncio.AbstractEventLoop) and loop.is_closed()


_INSTANCES: weakref.WeakSet[PerLoop[Any]] = weakref.WeakSet()
# asyncio keeps only weak references to tasks: these must not vanish while they wait.
_TASKS: set[asyncio.Task[None]] = set()


def _after_fork_in_child() -> None:
    for instance in list(_INSTANCES):
        instance.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
