"""No leaks: after faults, exhausted retries and cancellations, the pool is clean and usable.

These run against the fake on a real loopback port, so connections really drop, bodies
really arrive truncated and cancellations really interrupt socket I/O. After cancelled
calls this is a promise of the client the SDK builds only: in a client passed as
``http_client``, cancelled calls can leave the orphans of an httpcore bug, which the SDK
does not make and does not take back from a pool it leaves as it is.
"""

from __future__ import annotations

import random

import anyio
import httpx
import pytest

from clerk_sessions import AsyncClerk, BackoffStrategy, RetryConfig, _httpclient, errors
from clerk_sessions._pool import ReclaimingConnectionPool
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


# A call cancelled while it waits for a pool slot can lose the race of encode/httpcore#1093:
# another call frees a slot (its own connect cancelled) and the pool makes a connection
# for the first one, whose cancellation is delivered but has not run yet. That connection
# is never used. How often depends on how long a batch of calls takes to start against
# deadlines of up to 20 ms, so the calls come in batches of several sizes. On httpcore's
# own pool of 8 slots (SDK calls and plain httpx calls alike), a single batch left such
# orphans in 14 runs of 20 at 25 calls, 19 or 20 at 50 to 200, 9 to 13 at 400 and none of
# 80 at 1,000 (this test was once one batch of 1,000: it failed once in CI and passed
# every rerun); these batches together, in 20 of 20.
WAVES = (25, 50, 75, 100, 150, 200, 400)


async def test_a_thousand_cancelled_calls_under_contention_leave_the_pool_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The client the SDK builds for itself, whose pool takes those orphans back, with 8
    # slots instead of 100 so that the calls queue. A client passed as http_client keeps
    # httpcore's pool, and the SDK promises nothing of the kind for it: there a plain
    # `await http.get(...)` on the same deadlines leaves as many orphans as the SDK's
    # calls (test_pool_orphans.py makes both shapes of orphan on purpose).
    eight = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    monkeypatch.setattr(_httpclient, "LIMITS", eight)
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.0, 0.01), seed=3))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    rng = random.Random(7)
    finished = cancelled = 0
    async with (
        fake.serve_async() as url,
        AsyncClerk(fake.secret_key, server_url=url) as clerk,
    ):
        http = clerk._transport.client
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert type(pool) is ReclaimingConnectionPool
        assert pool._max_connections == 8

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
