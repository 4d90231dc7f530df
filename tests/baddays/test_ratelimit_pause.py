"""A 429 cannot freeze the client: a Retry-After above max_retry_after_ms raises at once
and pauses the client's RateLimit for at most max_retry_after_ms; a Retry-After of 0 or
less waits the backoff's first interval."""

from __future__ import annotations

import time

import pytest

from clerk_sessions import AsyncClerk, Clerk, RateLimit, RetryConfig, errors
from tests.core._support import RecordedSleeps, clerk_error_json, session_json

from ._hostile import SECRET, Conn, HostileServer, send_json

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def quota_then_sessions(retry_after: str, times: int = 1) -> object:
    """``times`` 429s with ``Retry-After: retry_after``, then sessions."""
    answered = 0

    def handler(conn: Conn) -> None:
        nonlocal answered
        while (request := conn.read_request()) is not None:
            answered += 1
            if answered <= times:
                sent = send_json(
                    conn,
                    clerk_error_json("too_many_requests", "Too many requests"),
                    429,
                    **{"Retry-After": retry_after},
                )
            else:
                sent = send_json(conn, session_json(request.session_id))
            if not sent:
                return

    return handler


async def test_a_day_long_retry_after_raises_at_once_and_pauses_for_the_cap_only(
    server: HostileServer,
) -> None:
    server.handler = quota_then_sessions("86400")  # type: ignore[assignment]
    config = RetryConfig(max_retry_after_ms=1000)
    async with AsyncClerk(
        SECRET, server_url=server.url, retry_config=config, rate_limit=RateLimit(100, 1)
    ) as clerk:
        started = time.monotonic()
        with pytest.raises(errors.RateLimitError) as info:
            await clerk.sessions.get("sess_1")
        assert info.value.retry_after == 86400
        assert time.monotonic() - started < 1
        # The next call on the healthy server waits out the 1 s cap, not the day.
        session = await clerk.sessions.get("sess_1")
        elapsed = time.monotonic() - started
    assert session.id == "sess_1"
    assert 0.9 < elapsed < 3


def test_the_sync_client_pauses_for_the_cap_only(server: HostileServer) -> None:
    server.handler = quota_then_sessions("86400")  # type: ignore[assignment]
    config = RetryConfig(max_retry_after_ms=1000)
    with Clerk(
        SECRET, server_url=server.url, retry_config=config, rate_limit=RateLimit(100, 1)
    ) as clerk:
        started = time.monotonic()
        with pytest.raises(errors.RateLimitError):
            clerk.sessions.get("sess_1")
        assert clerk.sessions.get("sess_1").id == "sess_1"
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "retry_after", ["0", "-3", "Wed, 21 Oct 2015 07:28:00 GMT"], ids=["zero", "negative", "past"]
)
async def test_a_retry_after_of_zero_or_less_waits_the_first_backoff_interval(
    server: HostileServer, retry_after: str
) -> None:
    server.handler = quota_then_sessions(retry_after, times=3)  # type: ignore[assignment]
    async with AsyncClerk(
        SECRET, server_url=server.url, retry_config=RetryConfig(jitter=0)
    ) as clerk:
        sleeps = RecordedSleeps()
        clerk._transport.sleep = sleeps
        await clerk.sessions.get("sess_1")
    assert len(server.requests) == 4
    # Never an immediate retry: at least the backoff's first interval each time.
    assert len(sleeps) == 3 and all(s >= 0.5 for s in sleeps)


async def test_a_shared_redis_limiter_is_paused_for_the_cap_only(
    server: HostileServer, redis_url: str
) -> None:
    from clerk_sessions.redis import RedisRateLimit

    server.handler = quota_then_sessions("86400")  # type: ignore[assignment]
    config = RetryConfig(max_retry_after_ms=1000)
    limiter = RedisRateLimit(redis_url, 100, 1)
    async with AsyncClerk(
        SECRET, server_url=server.url, retry_config=config, rate_limit=limiter
    ) as clerk:
        started = time.monotonic()
        with pytest.raises(errors.RateLimitError):
            await clerk.sessions.get("sess_1")
        # Every process that shares the quota waits out the 1 s cap, not the day.
        assert (await clerk.sessions.get("sess_1")).id == "sess_1"
    assert 0.9 < time.monotonic() - started < 3
