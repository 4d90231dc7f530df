"""What OpenTelemetry's HTTPX instrumentation sees of the SDK, on each engine.

It instruments httpx, the legacy engine: an application that passes its own
``httpx.AsyncClient`` (async or sync facade) gets one client span per request the SDK
sends, retries included. It does not instrument httpx2, so the client the SDK builds
(httpx2) is invisible to it; docs/how-to/opentelemetry.md says so.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from clerk_sessions import AsyncClerk, BackoffStrategy, Clerk, RetryConfig
from clerk_sessions.testing import FakeClerk, FaultConfig

from ._ops import ALL_OPS, call_async, call_sync, seed

pytestmark = pytest.mark.anyio

RETRIES = RetryConfig(backoff=BackoffStrategy(1, 5, 2.0, 20_000), max_attempts=10)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def fake() -> FakeClerk:
    # Faults make the SDK retry, so that every attempt, not every call, is counted.
    return FakeClerk(faults=FaultConfig(error_rate=0.2, seed=3))


def method_of(span: ReadableSpan) -> str:
    # The stable HTTP semantic conventions' name, or the older one (the default until a
    # user opts in with OTEL_SEMCONV_STABILITY_OPT_IN).
    attributes = span.attributes or {}
    return str(attributes.get("http.request.method", attributes.get("http.method")))


def url_of(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("url.full", attributes.get("http.url")))


def check_one_client_span_per_attempt(exporter: InMemorySpanExporter, fake: FakeClerk) -> None:
    client_spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert len(fake.requests) > len(ALL_OPS)  # retries happened
    assert len(client_spans) == len(fake.requests)
    seen = sorted(f"{r.method} {r.raw_path}" for r in fake.requests)
    traced = sorted(f"{method_of(s)} {httpx.URL(url_of(s)).path}" for s in client_spans)
    assert traced == seen
    # The trace context went out with each request, for Clerk-side correlation.
    assert all("traceparent" in r.headers for r in fake.requests)


async def test_every_request_on_a_user_httpx_client_is_a_client_span(
    spans: InMemorySpanExporter, fake: FakeClerk
) -> None:
    with fake.serve() as url:
        async with httpx.AsyncClient() as http:
            clerk = AsyncClerk(
                fake.secret_key, server_url=url, retry_config=RETRIES, http_client=http
            )
            for op in ALL_OPS:
                await call_async(clerk.sessions, op, seed(fake))
            await clerk.verify_token(seed(fake).token)  # /jwks too
    check_one_client_span_per_attempt(spans, fake)


def test_every_request_of_the_sync_client_on_a_user_httpx_client_is_a_client_span(
    spans: InMemorySpanExporter, fake: FakeClerk
) -> None:
    with (
        fake.serve() as url,
        Clerk(
            fake.secret_key,
            server_url=url,
            retry_config=RETRIES,
            http_client=httpx.AsyncClient(),
        ) as c,
    ):
        for op in ALL_OPS:
            call_sync(c.sessions, op, seed(fake))
    check_one_client_span_per_attempt(spans, fake)


async def test_the_httpx_instrumentation_does_not_see_the_sdks_own_httpx2_client(
    spans: InMemorySpanExporter, fake: FakeClerk
) -> None:
    with fake.serve() as url:
        async with AsyncClerk(fake.secret_key, server_url=url, retry_config=RETRIES) as clerk:
            for op in ALL_OPS:
                await call_async(clerk.sessions, op, seed(fake))
    assert len(fake.requests) > len(ALL_OPS)
    assert spans.get_finished_spans() == ()
    assert not any("traceparent" in r.headers for r in fake.requests)
