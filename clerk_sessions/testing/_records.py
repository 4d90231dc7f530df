"""What the fake saw: one record per attempt, and a controllable clock."""

from __future__ import annotations

import threading

import attrs

from ._faults import FaultName


@attrs.define(kw_only=True)
class RequestRecord:
    """One attempt as the fake saw it, filled in as the attempt proceeds.

    ``in_flight`` counts the attempts being handled at arrival, this one included.
    ``status`` is None when the connection was dropped (or the answer truncated, in
    which case ``truncated_status`` holds the status the client saw in the head).
    ``validation`` is None when response checking is off, else ``"ok"``,
    ``"violation"`` or ``"exempt"`` (deliberately broken answers: HTML 5XX, dropped
    connections, truncated bodies).
    """

    time: float
    method: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes
    authenticated: bool
    in_flight: int
    operation: str | None = None
    latency_s: float = 0.0
    fault: FaultName | None = None
    status: int | None = None
    truncated_status: int | None = None
    state_changed: bool = False
    validation: str | None = None
    violation: str | None = None


class ManualClock:
    """A clock for ``FakeClerk(clock=...)`` that moves only when told to (seconds)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        """Jump to ``now`` (unix seconds)."""
        with self._lock:
            self._now = now
