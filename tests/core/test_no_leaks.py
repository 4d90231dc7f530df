"""No leaks: after faults, exhausted retries and cancellations, the pool is clean and usable.

These run against the fake on a real loopback port, so connections really drop, bodies
really arrive truncated and cancellations really interrupt socket I/O. After cancelled
calls this is a promise of the SDK's own transport only (`clerk_sessions._http.pool`): in
a client passed as ``http_client``, cancelled calls can leave the orphans of an
httpcore/httpcore2 bug, which the SDK does not make and does not take back from a pool it
leaves as it is.
"""

from __future__ import annotations

import random

import anyio
import httpx2
import pytest

from clerk_sessions import AsyncClerk, BackoffStrategy, RetryConfig, errors
from clerk_sessions._http.pool import PoolTransport
from clerk_sessions.testing import FakeClerk, FaultConfig
from tests._engine import hx

pytestmark = pytest.mark.anyio

# Two attempts, a millisecond or two apart. The time budget only has to outlast a loaded
# machine's slowest first attempt: at 1 s, a first attempt stalled past it (a CI run on 2
# busy cores) left no time for the second, and the test saw one request instead of two.
QUICK = RetryConfig(backoff=BackoffStrategy(1, 2, 2.0, 30_000), max_attempts=2)


def assert_pool_idle(pool: object) -> None:
    """No request in flight or queued, and every connection idle or closed."""
    assert pool._requests == [], "a request is still queued or in flight"  # type: ignore[attr-defined]
    for connection in pool.connections:  # type: ignore[attr-defined]
        assert connection.is_idle() or connection.is_closed(), connection


def pool_of(http: object) -> object:
    # The library's own attributes, read only by this test: a user's client keeps them.
    return http._transport._pool  # type: ignore[attr-defined]


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
        hx.AsyncClient() as http,
    ):
        # Two clients on one pool: one meets the fault, the other proves the pool works.
        failing = AsyncClerk(
            broken.secret_key, server_url=bad_url, http_client=http, retry_config=QUICK
        )
        working = AsyncClerk(healthy.secret_key, server_url=good_url, http_client=http)
        with pytest.raises(errors.ClerkSessionsError):
            await failing.sessions.get(bad_id)
        assert len(broken.requests) == 2  # both attempts reached the server
        assert_pool_idle(pool_of(http))
        session = await working.sessions.get(good_id)
        assert session.id == good_id
        assert_pool_idle(pool_of(http))


# Calls cancelled on deadlines of up to 20 ms, in batches of several sizes, against a pool
# of 8 slots: under httpcore 1.x a batch left orphans (a connection made for a queued
# call whose cancellation had not run yet) in most runs of 20. httpcore2 drops those
# itself, and the other orphan (cancelled right after its connect) is rare here: with the
# SDK's repair removed this test passed 3 runs of 3. It stays as the end-to-end check that
# no cancellation leaves the pool unusable; test_pool_orphans.py makes each orphan on
# purpose.
WAVES = (25, 50, 75, 100, 150, 200, 400)


async def test_a_thousand_cancelled_calls_under_contention_leave_the_pool_usable() -> None:
    # The SDK's own transport (what it builds for itself, on httpx2, in either test run),
    # with 8 slots instead of 100 so that the calls queue. A client passed as http_client
    # keeps its library's pool, and the SDK promises nothing of the kind for it
    # (test_pool_orphans.py shows the orphans stock httpx2 keeps).
    eight = httpx2.Limits(max_connections=8, max_keepalive_connections=8)
    transport = PoolTransport(ssl_context=httpx2.create_ssl_context(), limits=eight)
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.0, 0.01), seed=3))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    rng = random.Random(7)
    finished = cancelled = 0
    async with (
        fake.serve_async() as url,
        AsyncClerk(fake.secret_key, server_url=url, transport=transport) as clerk,
    ):
        pool = transport.pool

        async def call_with_deadline() -> None:
            nonlocal finished, cancelled
            with anyio.move_on_after(rng.uniform(0.0, 0.02)) as scope:
                await clerk.sessions.get(session_id)
                finished += 1
            if scope.cancelled_caught:
                cancelled += 1

        for size in WAVES:
            async with anyio.create_task_group() as tg:
                for _ in range(size):
                    tg.start_soon(call_with_deadline)
        assert finished + cancelled == sum(WAVES) == 1_000
        assert cancelled > 100, "the test must really cancel calls in flight"
        assert_pool_idle(pool)
        for _ in range(20):  # every pooled connection is still good
            assert (await clerk.sessions.get(session_id)).id == session_id
        assert_pool_idle(pool)


async def test_cancelling_during_a_retry_wait_stops_the_call() -> None:
    fake = FakeClerk(faults=FaultConfig(error_rate=1.0))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    slow_retries = RetryConfig(backoff=BackoffStrategy(5_000, 5_000, 1.0, 60_000), max_attempts=5)
    async with fake.async_client(retry_config=slow_retries) as clerk:
        with anyio.move_on_after(0.2) as scope:
            await clerk.sessions.get(session_id)
        assert scope.cancelled_caught
        assert len(fake.requests) == 1
