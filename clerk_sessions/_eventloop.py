"""Which async library runs the current task, and which event loop it is.

The SDK runs on asyncio and trio. sniffio is not one of its dependencies, but every trio
is (trio depends on it): so while trio is not imported, the library is asyncio, and once
it is, sniffio answers.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Hashable

__all__ = ["current_library", "event_loop", "thread_runs_event_loop"]


def current_library() -> str:
    """``"asyncio"`` or ``"trio"``: the library of the running task."""
    if "trio" in sys.modules:
        import sniffio

        return sniffio.current_async_library()
    return "asyncio"


def event_loop() -> Hashable:
    """What identifies the running event loop: asyncio's loop, or trio's run (its token)."""
    if current_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token()
    return asyncio.get_running_loop()


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
