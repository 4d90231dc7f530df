"""One span per operation call (API.md, "Observability"): its name, kind, attributes,
retry events and status, on the client the SDK builds (httpx2) and on a user's
``httpx.AsyncClient``, on asyncio and trio, through real retries, 429s from the fake's
quota and waits of the client's `RateLimit` (all in virtual time: nothing sleeps)."""

from __future__ import annotations

import re
import warnings
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from clerk_sessions import BackoffStrategy, RateLimit, RetryConfig, errors
from clerk_sessions.testing import FakeClerk, FaultConfig, Quota
from tests.conventions._ops import SINGLE_REQUEST_OPS, Seeded, call_async, seed

from .conftest import SERVER_ADDRESS, Telemetry, VirtualTime, client_on

pytestmark = pytest.mark.anyio

RETRIES = RetryConfig(backoff=BackoffStrategy(10, 50, 2.0, 60_000), max_attempts=5)

TEMPLATES = {
    "list": ("GET", "/sessions"),
    "list_page": ("GET", "/sessions"),
    "create": ("POST", "/sessions"),
    "get": ("GET", "/sessions/{session_id}"),
    "revoke": ("POST", "/sessions/{session_id}/revoke"),
    "verify": ("POST", "/sessions/{session_id}/verify"),
    "create_token": ("POST", "/sessions/{session_id}/tokens"),
    "create_token_from_template": ("POST", "/sessions/{session_id}/tokens/{template_name}"),
    "refresh": ("POST", "/sessions/{session_id}/refresh"),
}


def seeded(fake: FakeClerk, otel: Telemetry) -> Seeded:
    values = seed(fake)
    otel.canary(values.token, values.refresh_token)
    return values


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.mark.parametrize("op", SINGLE_REQUEST_OPS)
async def test_each_operation_call_is_one_client_span_named_for_it(
    op: str, engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    values = seeded(fake, otel)
    async with client_on(engine, fake) as clerk:
        await call_async(clerk.sessions, op, values)

    (span,) = otel.spans()
    method, template = TEMPLATES[op]
    assert span.name == f"clerk.sessions.{op}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    found = attributes(span)
    # Clerk's id of the request, from its X-Clerk-Trace-Id header.
    assert re.fullmatch("[0-9a-f]{32}", found.pop("clerk.trace_id"))
    assert found == {
        "clerk.operation": op,
        "http.request.method": method,
        "server.address": SERVER_ADDRESS,
        "url.template": template,
        "http.response.status_code": 200,
        "clerk.attempts": 1,
        "clerk.rate_limit.wait_ms": 0.0,
    }


async def test_the_raw_response_form_of_an_operation_has_the_same_span(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    values = seeded(fake, otel)
    async with client_on(engine, fake) as clerk:
        await clerk.sessions.with_raw_response.get(values.session_id)

    assert otel.span("clerk.sessions.get").attributes["url.template"] == "/sessions/{session_id}"  # type: ignore[index]


async def test_a_failed_call_has_status_error_and_the_exceptions_class_name(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    async with client_on(engine, fake) as clerk:
        with pytest.raises(errors.NotFoundError) as raised:
            await clerk.sessions.get("sess_missing")

    span = otel.span("clerk.sessions.get")
    assert span.status.status_code is StatusCode.ERROR
    assert attributes(span)["error.type"] == "NotFoundError"
    assert attributes(span)["http.response.status_code"] == 404
    assert attributes(span)["clerk.trace_id"] == raised.value.clerk_trace_id


async def test_a_call_with_no_answer_has_the_error_type_and_no_status_code(
    otel: Telemetry,
) -> None:
    from clerk_sessions import AsyncClerk

    # Nothing listens on port 9 of the loopback interface: the connection is refused.
    async with AsyncClerk("sk_test_x", server_url="http://127.0.0.1:9/v1", retry_config=None) as c:
        with pytest.raises(errors.APIConnectionError):
            await c.sessions.get("sess_1")

    span = otel.span("clerk.sessions.get")
    assert attributes(span)["error.type"] == "APIConnectionError"
    assert "http.response.status_code" not in attributes(span)
    assert span.status.status_code is StatusCode.ERROR


async def test_each_retry_is_an_event_with_its_wait_and_cause(engine: str, otel: Telemetry) -> None:
    # The fake's quota lets one request in 5 s through; the SDK's retry policy waits
    # out each 429's Retry-After, in virtual time.
    clock = VirtualTime()
    fake = FakeClerk(secret_key=otel.canaries[0], clock=clock, quota=Quota(1, 5))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with client_on(engine, fake, sleep=clock.sleep, retry_config=RETRIES) as clerk:
        await clerk.sessions.get(session_id)
        await clerk.sessions.get(session_id)

    first, second = otel.named("clerk.sessions.get")
    assert first.events == ()
    (event,) = second.events
    assert event.name == "retry"
    assert dict(event.attributes or {}) == {
        "clerk.retry.wait_ms": clock.slept[0] * 1000,
        "clerk.retry.cause": "rate_limited",
        "http.response.status_code": 429,
    }
    assert clock.slept[0] >= 1  # the quota's Retry-After, not a backoff
    assert attributes(second)["clerk.attempts"] == 2
    assert attributes(second)["http.response.status_code"] == 200  # the last answer


async def test_retries_after_server_errors_are_events_with_that_cause(
    engine: str, otel: Telemetry
) -> None:
    clock = VirtualTime()
    fake = FakeClerk(
        secret_key=otel.canaries[0], clock=clock, faults=FaultConfig(error_rate=0.5, seed=5)
    )
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with client_on(engine, fake, sleep=clock.sleep, retry_config=RETRIES) as clerk:
        for _ in range(6):
            await clerk.sessions.get(session_id)

    spans = otel.named("clerk.sessions.get")
    events = [event for span in spans for event in span.events]
    assert events  # the seed makes some attempts fail
    assert {dict(e.attributes or {})["clerk.retry.cause"] for e in events} == {"server_error"}
    waits = [dict(e.attributes or {})["clerk.retry.wait_ms"] for e in events]
    assert waits == pytest.approx([s * 1000 for s in clock.slept], abs=0.001)
    assert sum(attributes(s)["clerk.attempts"] for s in spans) == len(fake.requests)


async def test_the_limiters_wait_is_on_the_span_of_the_request_it_held(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    clock = VirtualTime()
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    limiter = RateLimit(1, 10, clock=clock)
    async with client_on(engine, fake, sleep=clock.sleep, rate_limit=limiter) as clerk:
        await clerk.sessions.get(session_id)
        await clerk.sessions.get(session_id)

    first, second = otel.named("clerk.sessions.get")
    assert attributes(first)["clerk.rate_limit.wait_ms"] == 0.0
    assert attributes(second)["clerk.rate_limit.wait_ms"] == pytest.approx(10_000)
    assert second.events == ()  # a wait for the limiter is not a retry


async def test_an_operation_span_is_a_child_of_the_current_span(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    values = seeded(fake, otel)
    tracer = trace.get_tracer("tests")
    async with client_on(engine, fake) as clerk:
        with tracer.start_as_current_span("handler") as handler:
            await clerk.sessions.get(values.session_id)

    span = otel.span("clerk.sessions.get")
    assert span.parent is not None
    assert span.parent.span_id == handler.get_span_context().span_id
    assert span.context.trace_id == handler.get_span_context().trace_id


async def test_the_span_is_current_while_the_request_is_sent(
    fake: FakeClerk, otel: Telemetry
) -> None:
    # What an instrumented HTTP library (or a user's transport) sees as the current span.
    import httpx2

    seen: list[str] = []

    class Spy(httpx2.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = fake.transport()

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            context = trace.get_current_span().get_span_context()
            seen.append(format(context.span_id, "016x"))
            return await self.inner.handle_async_request(request)

    from clerk_sessions import AsyncClerk

    values = seeded(fake, otel)
    async with AsyncClerk(
        fake.secret_key, server_url="http://fake.clerk.test/v1", transport=Spy()
    ) as clerk:
        await clerk.sessions.get(values.session_id)

    assert seen == [format(otel.span("clerk.sessions.get").context.span_id, "016x")]


async def test_the_deprecated_verify_is_traced_like_the_others(
    fake: FakeClerk, otel: Telemetry
) -> None:
    values = seeded(fake, otel)
    async with client_on("httpx2", fake) as clerk:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            await clerk.sessions.verify(values.session_id, token=values.token)

    assert otel.span("clerk.sessions.verify").attributes["http.request.method"] == "POST"  # type: ignore[index]


async def test_a_jwks_fetch_is_a_span_of_its_own_and_a_cached_verification_none(
    engine: str, fake: FakeClerk, otel: Telemetry
) -> None:
    values = seeded(fake, otel)
    async with client_on(engine, fake) as clerk:
        with trace.get_tracer("tests").start_as_current_span("request") as request:
            await clerk.verify_token(values.token)
            await clerk.verify_token(values.token)  # the keys are cached: no request

    (span,) = [s for s in otel.spans() if s.name != "request"]
    assert span.name == "clerk.jwks"
    assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id
    assert attributes(span)["clerk.operation"] == "jwks"
    assert attributes(span)["url.template"] == "/jwks"
    assert attributes(span)["http.response.status_code"] == 200
    assert otel.counter("clerk.client.requests") == {
        frozenset({("clerk.operation", "jwks"), ("http.response.status_code", 200)}): 1
    }


async def test_on_an_instrumented_httpx_client_each_attempt_is_a_child_of_the_operation_span(
    fake: FakeClerk, otel: Telemetry, instrumented_httpx: None
) -> None:
    from clerk_sessions import AsyncClerk

    faulty = FakeClerk(secret_key=fake.secret_key, faults=FaultConfig(error_rate=0.5, seed=3))
    session_id = faulty.add_session(user_id=faulty.add_user())["id"]
    with faulty.serve() as url:
        async with httpx.AsyncClient() as http:
            clerk = AsyncClerk(fake.secret_key, server_url=url, http_client=http)
            for _ in range(6):
                await clerk.sessions.get(session_id, retries=RETRIES)

    gets = {s.context.span_id: s for s in otel.named("clerk.sessions.get")}
    http_spans = [s for s in otel.spans() if s.name == "GET"]
    assert len(http_spans) == len(faulty.requests) > len(gets)  # retries happened
    assert all(s.parent is not None and s.parent.span_id in gets for s in http_spans)
    for span_id, get in gets.items():
        attempts = [s for s in http_spans if s.parent.span_id == span_id]  # type: ignore[union-attr]
        assert len(attempts) == attributes(get)["clerk.attempts"]
