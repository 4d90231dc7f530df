"""No leaks: after faults, exhausted retries and cancellations, the pool is clean and usable.

These run against the fake on a real loopback port, so connections really drop, bodies
really arrive truncated and cancellations really interrupt socket I/O.
"""

from __future__ import annotations

import random

import anyio
import httpx
import pytest

from clerk_sessions import AsyncClerk, BackoffStrategy, RetryConfig, errors
from clerk_sessions.testing import FakeClerk, FaultConfig

pytestmark = pytest.mark.anyio

QUICK = RetryConfig(backoff=BackoffStrategy(1, 2, 2.0, 1_000), max_attempts=2)


def assert_pool_idle(http: httpx.AsyncClient) -> None:
    pool = http._transport._pool  # type: ignore[attr-defined]
    assert pool._requests == [], "a request is still queued or in flight"
    for connection in pool.connections:
        assert connection.is_idle() or connection.is_closed(), connection


@pytest.mark.parametrize(
    "fault",
    ["error_rate", "html_error_rate", "drop_before_rate", "drop_after_rate", "truncate_rate"],
)
async def test_after_exhausted_retries_the_pool_is_idle_and_the_next_call_succeeds(
    fault: str,
) -> None:
    broken = FakeClerk(faults=FaultConfig(**{fault: 1.0}), validate_responses=False)
    healthy = FakeClerk(secret_key=broken.secret_key)
    bad_id = broken.add_session(user_id=broken.add_user())["id"]
    good_id = healthy.add_session(user_id=healthy.add_user())["id"]
    async with (
        broken.serve_async() as bad_url,
        healthy.serve_async() as good_url,
        httpx.AsyncClient() as http,
    ):
        # Two clients on one pool: one meets the fault, the other proves the pool works.
        failing = AsyncClerk(
            broken.secret_key, server_url=bad_url, http_client=http, retry_config=QUICK
        )
        working = AsyncClerk(healthy.secret_key, server_url=good_url, http_client=http)
        with pytest.raises(errors.ClerkSessionsError):
            await failing.sessions.get(bad_id)
        assert len(broken.requests) == 2  # both attempts reached the server
        assert_pool_idle(http)
        session = await working.sessions.get(good_id)
        assert session.id == good_id
        assert_pool_idle(http)


async def test_a_thousand_cancelled_calls_under_contention_leave_the_pool_usable() -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.0, 0.01), seed=3))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    rng = random.Random(7)
    finished = cancelled = 0
    async with fake.serve_async() as url:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        async with httpx.AsyncClient(limits=limits) as http:
            clerk = AsyncClerk(fake.secret_key, server_url=url, http_client=http)

            async def call_with_deadline() -> None:
                nonlocal finished, cancelled
                with anyio.move_on_after(rng.uniform(0.0, 0.02)) as scope:
                    await clerk.sessions.get(session_id)
                    finished += 1
                if scope.cancelled_caught:
                    cancelled += 1

            async with anyio.create_task_group() as tg:
                for _ in range(1_000):
                    tg.start_soon(call_with_deadline)
            assert finished + cancelled == 1_000
            assert cancelled > 100, "the test must really cancel calls in flight"
            assert_pool_idle(http)
            for _ in range(20):  # every pooled connection is still good
                assert (await clerk.sessions.get(session_id)).id == session_id
            assert_pool_idle(http)


async def test_cancelling_during_a_retry_wait_stops_the_call() -> None:
    fake = FakeClerk(faults=FaultConfig(error_rate=1.0))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    slow_retries = RetryConfig(backoff=BackoffStrategy(5_000, 5_000, 1.0, 60_000), max_attempts=5)
    async with fake.async_client(retry_config=slow_retries) as clerk:
        with anyio.move_on_after(0.2) as scope:
            await clerk.sessions.get(session_id)
        assert scope.cancelled_caught
        assert len(fake.requests) == 1
