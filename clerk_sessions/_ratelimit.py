"""A client-side limiter that keeps a client under the instance's request quota."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["RateLimit"]


class RateLimit:
    """Never more than ``requests`` requests start in any window of ``per_seconds``.

    Clerk counts every request of an instance in fixed windows (1000 per 10 s in
    production, 100 per 10 s in development). A token bucket that starts full would let
    twice the quota through across a window boundary; this limiter instead gives each
    request a start time at least ``per_seconds`` after the request ``requests`` places
    before it, so every window of that length holds at most ``requests`` starts.

    One instance is shared by every call of the client it is given to, on every thread of
    the sync facade (its bookkeeping is guarded by a thread lock, and waiting happens with
    the event loop's own sleep). A 429 pauses every caller until its ``Retry-After``.
    """

    __slots__ = ("_lock", "_paused_until", "_starts", "clock", "per_seconds", "requests")

    def __init__(
        self,
        requests: int,
        per_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
            raise ValueError(f"requests must be an integer >= 1, got {requests!r}")
        if not isinstance(per_seconds, (int, float)) or not (
            math.isfinite(per_seconds) and per_seconds > 0
        ):
            raise ValueError(f"per_seconds must be a positive number, got {per_seconds!r}")
        self.requests = requests
        self.per_seconds = float(per_seconds)
        self.clock = clock
        self._lock = threading.Lock()
        # Start times of the last `requests` reservations, oldest first (non-decreasing).
        self._starts: deque[float] = deque(maxlen=requests)
        self._paused_until = -math.inf

    def __repr__(self) -> str:
        return f"RateLimit({self.requests}, {self.per_seconds:g})"

    def _reserve(self) -> float:
        """Book the earliest allowed start time and return how long to wait for it."""
        with self._lock:
            now = self.clock()
            start = max(now, self._paused_until)
            if self._starts:
                start = max(start, self._starts[-1])
                if len(self._starts) == self.requests:
                    start = max(start, self._starts[0] + self.per_seconds)
            self._starts.append(start)
            return start - now

    async def acquire(self, sleep: Callable[[float], Awaitable[object]]) -> None:
        """Wait until a request may start, and count it."""
        while True:
            delay = self._reserve()
            if delay > 0:
                await sleep(delay)
            # A 429 that arrived while we waited pauses us too: book again after it.
            if self.clock() >= self._paused_until:
                return

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (after a 429's ``Retry-After``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)
