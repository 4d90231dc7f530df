"""A client-side limiter that keeps a client under the instance's request quota."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["RateLimit", "SharedLimiter"]


class SharedLimiter(Protocol):
    """A limiter held outside the process (`clerk_sessions.redis`), as a client uses it:
    bound to the client's quota, with every step awaited (each may talk to the server).
    """

    async def acquire(self, sleep: Callable[[float], Awaitable[object]]) -> object:
        """Wait until a request may start, count it, and return a token for `finished`."""
        ...

    async def finished(self, token: object) -> None:
        """Record that the request counted as ``token`` got its answer (or failed)."""
        ...

    async def pause(self, seconds: float) -> None:
        """Hold every participant for ``seconds`` (after a 429's ``Retry-After``)."""
        ...

    async def aclose(self) -> None:
        """Release what the limiter holds for the calling client's event loop."""
        ...


class RateLimit:
    """Never more than ``requests`` requests start in any window of ``per_seconds``.

    Clerk counts every request of an instance (1000 per 10 s in production, 100 per 10 s
    in development, then 429 with ``Retry-After``). A token bucket that starts full would
    let twice the quota through across a window boundary; this limiter instead lets a
    request start only once the request ``requests`` starts before it is at least
    ``per_seconds`` old, so every window of that length holds at most ``requests`` starts.

    One instance is shared by every call of the client it is given to, on every thread of
    the sync facade (its bookkeeping is guarded by a thread lock; waiting happens with the
    caller's own sleep, so it never blocks an event loop). A 429 seen by any caller
    (`pause`) holds every caller until its ``Retry-After``.

    :param requests: how many requests may start per window (an integer >= 1).
    :param per_seconds: the window length in seconds.
    :param clock: a monotonic clock in seconds (injectable for tests).
    """

    __slots__ = (
        "_lock",
        "_paused_until",
        "_planned",
        "_started",
        "clock",
        "per_seconds",
        "requests",
    )

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
            raise ValueError(f"requests must be an integer >= 1, got {requests!r}")
        if (
            isinstance(per_seconds, bool)
            or not isinstance(per_seconds, (int, float))
            or not (math.isfinite(per_seconds) and per_seconds > 0)
        ):
            raise ValueError(f"per_seconds must be a positive number, got {per_seconds!r}")
        self.requests = requests
        self.per_seconds = float(per_seconds)
        self.clock = clock
        self._lock = threading.Lock()
        # Two records, both of the last `requests` entries, oldest first:
        # - `_started`: when requests actually started (the guarantee rests on these);
        # - `_planned`: the slots handed out to waiters, so that waiters wake one by one at
        #   distinct times instead of all at once whenever a slot frees up.
        # A waiter that wakes late (busy loop, contended thread) would break a guarantee
        # built on planned slots alone: the next one could start less than a window after
        # it. So a start is always checked against `_started` before it counts.
        self._started: deque[float] = deque(maxlen=requests)
        self._planned: deque[float] = deque(maxlen=requests)
        self._paused_until = -math.inf

    def __repr__(self) -> str:
        return f"RateLimit({self.requests}, {self.per_seconds:g})"

    def _plan(self) -> float:
        """Book the earliest slot the schedule allows; return the wait until it."""
        with self._lock:
            now = self.clock()
            return self._book(now) - now

    def _book(self, now: float) -> float:
        # Called with the lock held.
        slot = max(now, self._paused_until)
        planned = self._planned
        if planned:
            slot = max(slot, planned[-1])
            if len(planned) == self.requests:
                slot = max(slot, planned[0] + self.per_seconds)
        planned.append(slot)
        return slot

    def _try_start(self) -> tuple[float, float]:
        """Count a start now if allowed: ``(0, now)``; else ``(wait, now)``."""
        with self._lock:
            now = self.clock()
            if now < self._paused_until:
                # Paused after this caller booked: book again in the rebuilt schedule,
                # so the callers held by a pause do not all start the instant it ends.
                return self._book(now) - now, now
            started = self._started
            if len(started) == self.requests:
                ready_at = started[0] + self.per_seconds
                if ready_at > now:
                    return ready_at - now, now
            started.append(now)
            return 0.0, now

    async def acquire(self, sleep: Callable[[float], Awaitable[object]]) -> float:
        """Wait until a request may start, count it, and return its start time.

        ``sleep`` is the caller's sleep (the transport's, so tests can replace it). A
        caller cancelled while waiting leaves its booked slot unused, which only makes
        the schedule more conservative, never less.
        """
        delay = self._plan()
        while True:
            if delay > 0:
                await sleep(delay)
            delay, now = self._try_start()
            if delay <= 0:
                return now

    def finished(self, started_at: float) -> None:
        """Record that the request counted at ``started_at`` got its answer (or failed).

        The server counts a request when it *arrives*, which is some time after it
        started here (a new connection, a busy loop). Counting it from its answer
        instead, an upper bound of its arrival, keeps the server's windows under the
        quota too, not only ours.
        """
        with self._lock:
            started = self._started
            for index in range(len(started) - 1, -1, -1):
                if started[index] == started_at:
                    started[index] = max(started_at, self.clock())
                    return

    def _count_start(self) -> None:
        """Record a start that another limiter allowed (a shared quota this one stands in
        for), so that taking over later starts from this process's real recent starts."""
        with self._lock:
            now = self.clock()
            self._started.append(now)
            self._planned.append(max(now, self._planned[-1]) if self._planned else now)

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (after a 429's ``Retry-After``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)
            # Slots booked before the pause are void: rebuild the schedule from what really
            # started, so waiters released after the pause are spread over the window again
            # instead of all starting the instant it ends.
            self._planned = deque(self._started, maxlen=self.requests)
