"""Fault injection and Clerk's request quota for the fake server.

Every random decision the fake makes about faults comes from one ``random.Random``
seeded by ``FaultConfig.seed``, drawn in a fixed order per attempt (latency first,
then the fault), so the same sequence of requests sees the same faults.
"""

from __future__ import annotations

import collections
import math
import random
import threading
from typing import Literal

import attrs

FaultName = Literal["error_5xx", "html_5xx", "drop_before", "drop_after", "truncate", "quota"]
"""What the fake did to an attempt instead of (or on top of) answering it normally.

- ``error_5xx``: a 5XX with Clerk's error JSON, before the request reached the API logic.
- ``html_5xx``: a 5XX with an HTML page (a proxy's error page), before the API logic.
- ``drop_before``: the connection closed without a response, before any state change.
- ``drop_after``: the state change happened, then the connection closed without a response.
- ``truncate``: the state change happened, the response announced more bytes than it sent.
- ``quota``: Clerk's quota was exhausted: 429 with ``Retry-After``.
"""

#: The statuses an injected 5XX is drawn from.
FAULT_STATUSES = (500, 502, 503, 504)


def _rate(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


@attrs.frozen(kw_only=True)
class FaultConfig:
    """Which faults the fake injects, and how often.

    Rates are probabilities per attempt; their sum must not exceed 1 (one attempt gets at
    most one fault). ``latency_s`` is a ``(min, max)`` range of seconds slept before
    answering (uniformly drawn; ``(0, 0)`` for none). ``/jwks`` gets faults too, but is
    never counted against the quota.
    """

    latency_s: tuple[float, float] = (0.0, 0.0)
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    html_error_rate: float = attrs.field(default=0.0, validator=_rate)
    drop_before_rate: float = attrs.field(default=0.0, validator=_rate)
    drop_after_rate: float = attrs.field(default=0.0, validator=_rate)
    truncate_rate: float = attrs.field(default=0.0, validator=_rate)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        low, high = self.latency_s
        if low < 0 or high < low:
            raise ValueError(
                f"latency_s must be (min, max) with 0 <= min <= max, got {self.latency_s!r}"
            )
        if self._total_rate() > 1.0 + 1e-9:
            raise ValueError("the fault rates must add up to at most 1")

    def _total_rate(self) -> float:
        return (
            self.error_rate
            + self.html_error_rate
            + self.drop_before_rate
            + self.drop_after_rate
            + self.truncate_rate
        )


@attrs.frozen(kw_only=True)
class FaultDecision:
    """What one attempt gets: a latency and at most one fault (with its 5XX status)."""

    latency_s: float
    fault: FaultName | None
    status: int | None = None


class FaultInjector:
    """Draws the fault of each attempt from one seeded generator (thread-safe)."""

    def __init__(self, config: FaultConfig | None) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed if config else 0)

    def reset(self) -> None:
        """Start the sequence of draws again, as a new fake with the same seed would."""
        with self._lock:
            self._rng = random.Random(self._config.seed if self._config else 0)

    def draw(self) -> FaultDecision:
        """Decide the latency and fault of the next attempt."""
        config = self._config
        if config is None:
            return FaultDecision(latency_s=0.0, fault=None)
        with self._lock:
            low, high = config.latency_s
            latency = self._rng.uniform(low, high) if high > 0 else 0.0
            roll = self._rng.random()
            status_roll = self._rng.choice(FAULT_STATUSES)
        bands: tuple[tuple[FaultName, float], ...] = (
            ("error_5xx", config.error_rate),
            ("html_5xx", config.html_error_rate),
            ("drop_before", config.drop_before_rate),
            ("drop_after", config.drop_after_rate),
            ("truncate", config.truncate_rate),
        )
        edge = 0.0
        for name, rate in bands:
            edge += rate
            if roll < edge:
                status = status_roll if name in ("error_5xx", "html_5xx") else None
                return FaultDecision(latency_s=latency, fault=name, status=status)
        return FaultDecision(latency_s=latency, fault=None)


@attrs.frozen
class Quota:
    """Clerk's request quota: at most ``requests`` per ``per_seconds`` per secret key.

    Clerk allows 100 requests per 10 s on development instances and 1000 per 10 s in
    production; over it, 429 with ``Retry-After`` in seconds.
    """

    requests: int = 100
    per_seconds: float = 10.0

    def __attrs_post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds <= 0:
            raise ValueError("a quota needs requests >= 1 and per_seconds > 0")


class QuotaTracker:
    """A sliding window over the accepted requests of each secret key.

    Sliding (not fixed windows): no window of ``per_seconds`` ever holds more than
    ``requests`` accepted requests, which is the strictest reading of Clerk's limit and
    exactly what a client-side limiter must guarantee. Rejected (429) requests are not
    counted, so a client that waits ``Retry-After`` gets through.
    """

    def __init__(self, quota: Quota) -> None:
        self.quota = quota
        self._lock = threading.Lock()
        self._accepted: dict[str, collections.deque[float]] = {}

    def reset(self) -> None:
        """Forget every counted request."""
        with self._lock:
            self._accepted.clear()

    def admit(self, key: str, now: float) -> int | None:
        """Count a request at ``now``; None if admitted, else the seconds to wait."""
        with self._lock:
            window = self._accepted.setdefault(key, collections.deque())
            horizon = now - self.quota.per_seconds
            while window and window[0] <= horizon:
                window.popleft()
            if len(window) < self.quota.requests:
                window.append(now)
                return None
            # The oldest request leaves the window at window[0] + per_seconds.
            return max(1, math.ceil(window[0] + self.quota.per_seconds - now))
