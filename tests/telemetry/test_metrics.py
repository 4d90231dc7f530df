"""The client metrics (API.md, "Observability"): ``clerk.client.requests`` (each HTTP
request sent), ``clerk.client.duration`` (each operation call), ``clerk.client.retries``
and ``clerk.rate_limit.wait``, read from the SDK's in-memory metric reader, on both
engines, asyncio and trio."""

from __future__ import annotations

from typing import Any

import pytest

from clerk_sessions import AsyncClerk, BackoffStrategy, RateLimit, RetryConfig, errors
from clerk_sessions._telemetry import DURATION_BUCKETS_S, WAIT_BUCKETS_S
from clerk_sessions.testing import FakeClerk, Quota

from .conftest import Telemetry, VirtualTime, client_on

pytestmark = pytest.mark.anyio

RETRIES = RetryConfig(backoff=BackoffStrategy(10, 50, 2.0, 60_000), max_attempts=5)


def keyed(**attributes: Any) -> frozenset[tuple[str, Any]]:
    return frozenset(attributes.items())


def op_status(operation: str, status: int) -> frozenset[tuple[str, Any]]:
    return keyed(**{"clerk.operation": operation, "http.response.status_code": status})


def op_error(operation: str, error_type: str) -> frozenset[tuple[str, Any]]:
    return keyed(**{"clerk.operation": operation, "error.type": error_type})


async def test_every_request_sent_is_counted_with_its_status_429s_included(
    engine: str, otel: Telemetry
) -> None:
    clock = VirtualTime()
    fake = FakeClerk(secret_key=otel.canaries[0], clock=clock, quota=Quota(1, 5))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with client_on(engine, fake, sleep=clock.sleep, retry_config=RETRIES) as clerk:
        await clerk.sessions.get(session_id)
        await clerk.sessions.get(session_id)  # a 429, then the retry
        with pytest.raises(errors.NotFoundError):
            await clerk.sessions.revoke("sess_unknown")  # a 429 too, then the 404

    assert otel.counter("clerk.client.requests") == {
        op_status("get", 200): 2,
        op_status("get", 429): 1,
        op_status("revoke", 429): 1,
        op_status("revoke", 404): 1,
    }
    assert len(fake.requests) == 5


async def test_a_request_without_an_answer_is_counted_by_its_error_type(otel: Telemetry) -> None:
    async with AsyncClerk("sk_test_x", server_url="http://127.0.0.1:9/v1", retry_config=None) as c:
        with pytest.raises(errors.APIConnectionError):
            await c.sessions.list(user_id="user_1")

    no_answer = op_error("list", "APIConnectionError")
    assert otel.counter("clerk.client.requests") == {no_answer: 1}
    assert otel.histogram("clerk.client.duration").keys() == {no_answer}


async def test_each_operation_call_has_one_duration_in_seconds_retries_and_waits_included(
    engine: str, otel: Telemetry
) -> None:
    clock = VirtualTime()
    fake = FakeClerk(secret_key=otel.canaries[0], clock=clock, quota=Quota(1, 5))
    user_id = fake.add_user()
    session_id = fake.add_session(user_id=user_id)["id"]
    async with client_on(engine, fake, sleep=clock.sleep, retry_config=RETRIES) as clerk:
        await clerk.sessions.get(session_id)
        await clerk.sessions.get(session_id)
        await clerk.sessions.revoke_many([session_id])
        with pytest.raises(errors.NotFoundError):
            await clerk.sessions.get("sess_unknown")

    durations = otel.histogram("clerk.client.duration")
    assert {key: count for key, (count, _) in durations.items()} == {
        keyed(**{"clerk.operation": "get"}): 2,
        keyed(**{"clerk.operation": "revoke"}): 1,
        keyed(**{"clerk.operation": "revoke_many"}): 1,
        op_error("get", "NotFoundError"): 1,
    }
    # Virtual time: the waits cost no real time, so each call took well under a second.
    assert all(0 < total < 1 for _, total in durations.values())


async def test_retries_are_counted_by_cause(engine: str, otel: Telemetry) -> None:
    clock = VirtualTime()
    fake = FakeClerk(secret_key=otel.canaries[0], clock=clock, quota=Quota(1, 5))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with client_on(engine, fake, sleep=clock.sleep, retry_config=RETRIES) as clerk:
        for _ in range(3):
            await clerk.sessions.get(session_id)

    rate_limited = keyed(**{"clerk.retry.cause": "rate_limited"})
    assert otel.counter("clerk.client.retries") == {rate_limited: 2}


async def test_each_request_through_the_limiter_records_its_wait_in_seconds(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    clock = VirtualTime()
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    limiter = RateLimit(2, 10, clock=clock)
    async with client_on(engine, fake, sleep=clock.sleep, rate_limit=limiter) as clerk:
        for _ in range(3):
            await clerk.sessions.get(session_id)

    assert otel.histogram("clerk.rate_limit.wait") == {frozenset(): (3, pytest.approx(10.0))}


async def test_without_a_limiter_no_wait_is_recorded(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with client_on(engine, fake) as clerk:
        await clerk.sessions.get(session_id)

    assert otel.histogram("clerk.rate_limit.wait") == {}


async def test_the_histograms_have_buckets_in_seconds(fake: FakeClerk, otel: Telemetry) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with client_on("httpx2", fake, rate_limit=RateLimit(10, 1)) as clerk:
        await clerk.sessions.get(session_id)

    points = otel.collect()
    ((_, (_, _, duration_buckets)),) = points["clerk.client.duration"]
    ((_, (_, _, wait_buckets)),) = points["clerk.rate_limit.wait"]
    assert len(duration_buckets) == len(DURATION_BUCKETS_S) + 1
    assert len(wait_buckets) == len(WAIT_BUCKETS_S) + 1
    assert wait_buckets[0] == 1  # no wait: the bucket up to 0 s
