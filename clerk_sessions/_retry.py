"""The retry policy: which failures are retried, how long to wait, when to give up.

A `RetryConfig` becomes a `RetryPolicy` once per client (and once per distinct per-call
override). The first attempt of every request runs without any retry machinery (the
transport runs it, and comes here only when it failed); only a retryable failure enters
tenacity, which replays that failure as its own first attempt so its attempt count and
backoff are exact.

Time is counted from the start of the first attempt: ``max_elapsed_time_ms`` bounds the
whole call, and each retry is handed what is left of it as its deadline.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypeVar

from clerk_sessions._config import RetryConfig
from clerk_sessions._errors import APIConnectionError, ClerkSessionsError

if TYPE_CHECKING:
    # tenacity loads with the first retry: most processes never need it.
    import tenacity

__all__ = ["RetryPolicy", "parse_retry_after"]

logger = logging.getLogger("clerk_sessions")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]
# An attempt, given the seconds left of the policy's budget (None: the first attempt).
Attempt = Callable[[float | None], Awaitable[T]]


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when it says nothing usable.

    Accepts delta-seconds (``"3"``, ``"1.5"``) and HTTP dates (a past date means 0).
    Negative, infinite, NaN and unreadable values give None, so the caller falls back to
    its own backoff instead of trusting garbage.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        import email.utils  # only HTTP dates need it

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


class RetryPolicy:
    """A `RetryConfig` made ready to run."""

    __slots__ = ("_random", "clock", "config", "pause_cap_s")

    def __init__(self, config: RetryConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        #: The longest Retry-After waited for, and the longest a 429 pauses the limiter.
        self.pause_cap_s = config.max_retry_after_ms / 1000
        self._random = rng or random.Random()
        self.clock: Callable[[], float] = time.monotonic

    def should_retry(self, exc: BaseException, replay_safe: bool) -> bool:
        """Whether ``exc`` is worth another attempt.

        ``replay_safe`` is False for a POST that must not run twice (``create``,
        ``refresh``): it is repeated only when it cannot have reached the server.
        """
        if isinstance(exc, APIConnectionError):
            if not (self.config.retry_connection_errors and exc.retryable):
                return False
            return replay_safe or not exc.request_sent
        status = getattr(exc, "status_code", None)
        if not isinstance(exc, ClerkSessionsError) or not isinstance(status, int):
            return False
        retry_after: float | None = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > self.pause_cap_s:
            # Not worth waiting for here: raise it, with `retry_after`, to the caller.
            return False
        if status == 429:
            # Clerk refuses before doing any work, so even a create may be repeated.
            return True
        return replay_safe and status >= 500 and status != 501

    def backoff_s(self, failed_attempts: int) -> float:
        """The wait after ``failed_attempts`` failures, jittered downwards."""
        backoff = self.config.backoff
        base_ms = min(
            backoff.max_interval_ms,
            backoff.initial_interval_ms * backoff.exponent ** (failed_attempts - 1),
        )
        return base_ms / 1000 * (1 - self.config.jitter * self._random.random())

    def _wait(self, state: tenacity.RetryCallState) -> float:
        assert state.outcome is not None
        retry_after: float | None = getattr(state.outcome.exception(), "retry_after", None)
        if retry_after is None:
            return self.backoff_s(state.attempt_number)
        if retry_after <= 0:
            # "Retry-After: 0" (or a date in the past) from every server of a struggling
            # fleet must not turn into a burst of immediate retries.
            return self.backoff_s(1)
        return retry_after

    def wants_retry(self, failure: ClerkSessionsError, replay_safe: bool) -> bool:
        """Whether the first attempt's ``failure`` is worth retrying at all."""
        return self.config.strategy != "none" and self.should_retry(failure, replay_safe)

    async def retry(
        self,
        failure: ClerkSessionsError,
        attempt: Attempt[T],
        *,
        started: float,
        replay_safe: bool,
        sleep: Sleep,
    ) -> T:
        """Retry after the first attempt (begun at ``started``, on `clock`) failed with
        ``failure``, which `wants_retry`: until an attempt succeeds or the policy gives up
        (its last error is then raised as is). Each retry gets the seconds left of
        ``max_elapsed_time_ms``, counted from the start of the first attempt."""
        first_failure: ClerkSessionsError | None = failure
        budget_s = self.config.backoff.max_elapsed_time_ms / 1000

        async def replay_then_attempt() -> T:
            nonlocal first_failure
            if first_failure is not None:
                replayed, first_failure = first_failure, None
                raise replayed
            return await attempt(budget_s - (self.clock() - started))

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= self.config.max_attempts:
                return True
            # idle_for: the waits so far, which an injected sleep does not spend.
            spent = max(self.clock() - started, state.idle_for)
            return spent + state.upcoming_sleep >= budget_s

        import tenacity

        retrying = tenacity.AsyncRetrying(
            sleep=sleep,
            stop=stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda e: self.should_retry(e, replay_safe)),
            before_sleep=_log_retry,
            reraise=True,
        )
        return await retrying(replay_then_attempt)


def _log_retry(state: tenacity.RetryCallState) -> None:
    assert state.outcome is not None
    logger.info(
        "retrying in %.2f s after attempt %d failed: %s",
        state.upcoming_sleep,
        state.attempt_number,
        state.outcome.exception(),
    )
