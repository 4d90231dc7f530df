"""No span, event or metric attribute holds the secret key, a token, a JWT or a refresh
token. Every test holding the `otel` fixture ends with that check (conftest.py); here,
every operation that carries a secret runs traced with canary values, the instrumented
httpx of a user's client included, and the check itself is shown to catch a leak."""

from __future__ import annotations

import warnings

import httpx
import pytest
from opentelemetry import metrics, trace

from clerk_sessions import AsyncClerk, BackoffStrategy, RetryConfig
from clerk_sessions.testing import FakeClerk, FaultConfig
from tests.conventions._ops import ALL_OPS, call_async, seed

from . import conftest
from .conftest import CANARY_KEY, Telemetry

pytestmark = pytest.mark.anyio

RETRIES = RetryConfig(backoff=BackoffStrategy(1, 5, 2.0, 20_000), max_attempts=10)


async def test_no_secret_of_any_operation_reaches_a_span_or_a_metric(
    otel: Telemetry, instrumented_httpx: None
) -> None:
    # The httpx instrumentation's HTTP spans are checked too; faults make the SDK retry,
    # so retry events and error spans are.
    fake = FakeClerk(secret_key=CANARY_KEY, faults=FaultConfig(error_rate=0.2, seed=3))
    with fake.serve() as url:
        async with httpx.AsyncClient() as http:
            clerk = AsyncClerk(CANARY_KEY, server_url=url, retry_config=RETRIES, http_client=http)
            for op in ALL_OPS:
                values = seed(fake)
                otel.canary(values.token, values.refresh_token)
                await call_async(clerk.sessions, op, values)
            values = seed(fake)
            otel.canary(values.token, values.refresh_token)
            await clerk.verify_token(values.token)
            await clerk.authenticate_request({"Authorization": f"Bearer {values.token}"})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await clerk.sessions.with_raw_response.verify(values.session_id, token=values.token)

    names = {span.name for span in otel.spans()}
    assert {f"clerk.sessions.{op}" for op in ALL_OPS if op != "iterate"} <= names
    assert "clerk.jwks" in names
    assert any(span.kind is trace.SpanKind.CLIENT and span.name == "POST" for span in otel.spans())
    assert len(fake.requests) > len(ALL_OPS)  # retries happened
    # The teardown of `otel` finds no canary: the check of this test.


def test_the_canary_check_finds_a_secret_in_a_span_an_event_and_a_metric(otel: Telemetry) -> None:
    otel.canary("rt_canaryRefreshToken")
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("leaky", attributes={"header": f"Bearer {CANARY_KEY}"}) as s:
        s.add_event("oops", {"jwt": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2ln"})
    counter = metrics.get_meter("tests").create_counter("tests.leaky")
    counter.add(1, {"refresh": "rt_canaryRefreshToken"})

    leaks = otel.leaks()

    assert len(leaks) == 3
    assert any("attribute header" in leak for leak in leaks)
    assert any("event oops attribute jwt" in leak for leak in leaks)
    assert any("metric tests.leaky attribute refresh" in leak for leak in leaks)
    # Planted on purpose: forgotten, so that this test's own teardown passes.
    conftest._SPANS.clear()
    otel.points.clear()
