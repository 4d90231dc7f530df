"""Bulk operations' spans are parents of one span per request they make: ``revoke_many``
of its ``revoke`` spans, ``revoke_all`` of its ``list_page`` and ``revoke`` spans; and
the limiter's waits and a 429's retry inside one ``revoke_all`` show where they happened."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from clerk_sessions import BackoffStrategy, RateLimit, RetryConfig
from clerk_sessions.testing import FakeClerk, Quota

from .conftest import SERVER_ADDRESS, Telemetry, VirtualTime, client_on

pytestmark = pytest.mark.anyio

RETRIES = RetryConfig(backoff=BackoffStrategy(10, 50, 2.0, 60_000), max_attempts=5)


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def user_with_sessions(fake: FakeClerk, count: int) -> tuple[str, list[str]]:
    user_id = fake.add_user()
    return user_id, [fake.add_session(user_id=user_id)["id"] for _ in range(count)]


async def test_revoke_many_is_the_parent_of_one_revoke_span_per_id(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    _, ids = user_with_sessions(fake, 3)
    async with client_on(engine, fake) as clerk:
        result = await clerk.sessions.revoke_many([*ids, "sess_unknown"], concurrency=2)

    spans = otel.spans()
    bulk = otel.span("clerk.sessions.revoke_many")
    revokes = children(spans, bulk)
    assert bulk.kind is SpanKind.CLIENT
    assert attributes(bulk) == {
        "clerk.operation": "revoke_many",
        "server.address": SERVER_ADDRESS,
        "clerk.bulk.revoked": 3,
        "clerk.bulk.failed": 1,
    }
    assert bulk.status.status_code is StatusCode.UNSET  # failed ids are in the result
    assert sorted(s.name for s in revokes) == ["clerk.sessions.revoke"] * 4
    assert len(spans) == 5  # nothing else, nothing outside the bulk span
    assert {s.context.trace_id for s in spans} == {bulk.context.trace_id}
    assert sorted(attributes(s)["http.response.status_code"] for s in revokes) == [200] * 3 + [404]
    assert len(result.failed) == 1


async def test_revoke_all_is_the_parent_of_its_listings_and_its_revokes(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    user_id, ids = user_with_sessions(fake, 4)
    async with client_on(engine, fake) as clerk:
        await clerk.sessions.revoke_all(user_id=user_id, concurrency=2)

    spans = otel.spans()
    bulk = otel.span("clerk.sessions.revoke_all")
    names = sorted(s.name for s in children(spans, bulk))
    # One listing that found the four, four revokes, one listing that found none left.
    assert names == ["clerk.sessions.list_page"] * 2 + ["clerk.sessions.revoke"] * 4
    assert len(spans) == 7
    assert attributes(bulk)["clerk.bulk.revoked"] == len(ids)


async def test_a_bulk_span_is_a_child_of_the_current_span(fake: FakeClerk, otel: Telemetry) -> None:
    _, ids = user_with_sessions(fake, 2)
    async with client_on("httpx2", fake) as clerk:
        with trace.get_tracer("tests").start_as_current_span("incident") as incident:
            await clerk.sessions.revoke_many(ids)

    bulk = otel.span("clerk.sessions.revoke_many")
    assert bulk.parent is not None
    assert bulk.parent.span_id == incident.get_span_context().span_id


async def test_a_bulk_call_that_raises_has_status_error_and_the_partial_counts(
    fake: FakeClerk, otel: Telemetry
) -> None:
    _, ids = user_with_sessions(fake, 2)

    def ids_then_fail() -> Any:
        yield from ids
        raise RuntimeError("the id source broke")

    async with client_on("httpx2", fake) as clerk:
        with pytest.raises(RuntimeError):
            await clerk.sessions.revoke_many(ids_then_fail(), concurrency=1)

    bulk = otel.span("clerk.sessions.revoke_many")
    assert bulk.status.status_code is StatusCode.ERROR
    assert attributes(bulk)["error.type"] == "RuntimeError"
    assert attributes(bulk)["clerk.bulk.revoked"] == 2


async def test_a_revoke_all_shows_its_limiter_waits_and_the_retry_after_a_429(
    engine: str, otel: Telemetry
) -> None:
    # The client's limiter (2 per 10 s) is looser than the quota (2 per 15 s): requests
    # wait for the limiter, and some get a 429 and are retried after its Retry-After.
    clock = VirtualTime()
    fake = FakeClerk(secret_key=otel.canaries[0], clock=clock, quota=Quota(2, 15))
    user_id, ids = user_with_sessions(fake, 3)
    limiter = RateLimit(2, 10, clock=clock)
    async with client_on(
        engine, fake, sleep=clock.sleep, rate_limit=limiter, retry_config=RETRIES
    ) as clerk:
        result = await clerk.sessions.revoke_all(user_id=user_id, concurrency=1)

    spans = otel.spans()
    bulk = otel.span("clerk.sessions.revoke_all")
    requests = children(spans, bulk)
    retried = [s for s in requests if s.events]
    waited = [s for s in requests if attributes(s)["clerk.rate_limit.wait_ms"] > 0]
    assert len(result.revoked) == len(ids)
    assert len(requests) == len(spans) - 1
    assert retried and waited
    for span in retried:
        assert [e.name for e in span.events] == ["retry"]
        assert dict(span.events[0].attributes or {})["clerk.retry.cause"] == "rate_limited"
        assert attributes(span)["clerk.attempts"] == 2
    total_attempts = sum(attributes(s)["clerk.attempts"] for s in requests)
    assert total_attempts == len(fake.requests)
