"""OpenTelemetry for the telemetry tests: the SDK's providers with in-memory exporters,
and a fake whose secrets are canaries.

The API takes one global tracer provider and one meter provider per process, so they
are set once, on first use, and record only while a test holds the `otel` fixture (a
sampler that drops every span otherwise, so the other tests of the process pay nothing).
Metrics are read with delta temporality: `otel` drains what came before it.

Every test that holds `otel` ends with the canary check: no span name, attribute, event
or link attribute, status description, and no metric name or data point attribute of
its run may hold the secret key, a session token (any JWT), a refresh token or any
other value the test registered (`Telemetry.canary`). The check runs in the fixture's
teardown, so a test that leaks fails even when its own assertions pass.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio.lowlevel
import httpx
import pytest
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from clerk_sessions import AsyncClerk
from clerk_sessions.testing import FakeClerk
from clerk_sessions.testing._asgi import ConnectionDropped

#: The secret key of every fake here: recognisable anywhere it turns up.
CANARY_KEY = "sk_test_CANARYsecretKEY0123456789abcdefghij"
SERVER_URL = "http://fake.clerk.test/v1"
SERVER_ADDRESS = "fake.clerk.test"
# Anything that looks like a secret key or a JWT (a session token) is a leak.
_SECRET_PATTERNS = (re.compile(r"sk_(test|live)_"), re.compile(r"eyJ[\w-]+\.[\w-]+"))


class _Listening(Sampler):
    """Records every span while a test listens, none otherwise."""

    def __init__(self) -> None:
        self.active = False

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if not self.active:
            return SamplingResult(Decision.DROP)
        # A sampler's result carries the span's starting attributes, as the SDK's own do.
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "tests.telemetry: records while a test listens"


_SAMPLER = _Listening()
_SPANS = InMemorySpanExporter()
_READER = InMemoryMetricReader(
    preferred_temporality={
        Counter: AggregationTemporality.DELTA,
        Histogram: AggregationTemporality.DELTA,
    }
)
_installed = False


def _install_providers() -> None:
    global _installed
    if _installed:
        return
    provider = TracerProvider(sampler=_SAMPLER)
    provider.add_span_processor(SimpleSpanProcessor(_SPANS))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[_READER]))
    _installed = True


Point = tuple[frozenset[tuple[str, Any]], Any]


class Telemetry:
    """What the SDK reported during one test: finished spans, and metric points."""

    def __init__(self) -> None:
        self.points: dict[str, list[Point]] = {}
        self.canaries: list[str] = [CANARY_KEY]

    def canary(self, *values: str) -> None:
        """Values that must appear in no span or metric of this test."""
        self.canaries.extend(values)

    def spans(self) -> list[ReadableSpan]:
        return list(_SPANS.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.named(name)
        return found

    def collect(self) -> dict[str, list[Point]]:
        """Every metric point so far (deltas read since the test began, added up by
        attribute set)."""
        data = _READER.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        attributes = frozenset((point.attributes or {}).items())
                        value = getattr(point, "value", None)
                        if value is None:  # a histogram point
                            value = (point.count, point.sum, tuple(point.bucket_counts))
                        self.points.setdefault(metric.name, []).append((attributes, value))
        return self.points

    def counter(self, name: str) -> dict[frozenset[tuple[str, Any]], int]:
        """Counter ``name``: its total per attribute set."""
        totals: dict[frozenset[tuple[str, Any]], int] = {}
        for attributes, value in self.collect().get(name, []):
            totals[attributes] = totals.get(attributes, 0) + value
        return totals

    def histogram(self, name: str) -> dict[frozenset[tuple[str, Any]], tuple[int, float]]:
        """Histogram ``name``: its count and sum per attribute set."""
        totals: dict[frozenset[tuple[str, Any]], tuple[int, float]] = {}
        for attributes, (count, total, _buckets) in self.collect().get(name, []):
            before = totals.get(attributes, (0, 0.0))
            totals[attributes] = (before[0] + count, before[1] + total)
        return totals

    def leaks(self) -> list[str]:
        """Where a canary or a secret-looking value turned up."""
        found: list[str] = []

        def check(where: str, value: object) -> None:
            values: Sequence[object] = value if isinstance(value, (list, tuple)) else [value]
            for item in values:
                text = str(item)
                if any(p.search(text) for p in _SECRET_PATTERNS) or any(
                    canary in text for canary in self.canaries
                ):
                    found.append(f"{where}: {text!r}")

        for span in self.spans():
            check(f"span name {span.name}", span.name)
            for key, value in (span.attributes or {}).items():
                check(f"{span.name} attribute {key}", value)
            for event in span.events:
                check(f"{span.name} event name", event.name)
                for key, value in (event.attributes or {}).items():
                    check(f"{span.name} event {event.name} attribute {key}", value)
            for link in span.links:
                for key, value in (link.attributes or {}).items():
                    check(f"{span.name} link attribute {key}", value)
            check(f"{span.name} status", span.status.description or "")
        for name, points in self.collect().items():
            check("metric name", name)
            for attributes, _value in points:
                for key, value in attributes:
                    check(f"metric {name} attribute {key}", value)
        return found


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    """The spans and metrics the SDK reports during this test; ends with the canary
    check."""
    _install_providers()
    _SPANS.clear()
    _READER.get_metrics_data()  # drain what other tests recorded
    telemetry = Telemetry()
    _SAMPLER.active = True
    try:
        yield telemetry
    finally:
        _SAMPLER.active = False
    leaks = telemetry.leaks()
    _SPANS.clear()
    assert not leaks, "secrets in telemetry:\n" + "\n".join(leaks)


@pytest.fixture
def instrumented_httpx() -> Iterator[None]:
    """OpenTelemetry's httpx instrumentation, on the global provider."""
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument()
    try:
        yield
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk(secret_key=CANARY_KEY)


class VirtualTime:
    """A clock for the fake, the limiter and the client's sleeps: sleeping moves it on
    at once, so 429s, Retry-After and limiter waits run without real waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


class _HttpxFakeTransport(httpx.AsyncBaseTransport):
    """The fake in process for an ``httpx.AsyncClient``: its app under httpx's ASGI
    transport, a dropped connection raised as httpx does."""

    def __init__(self, fake: FakeClerk) -> None:
        self._inner = httpx.ASGITransport(app=fake.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from None

    async def aclose(self) -> None:
        await self._inner.aclose()


ENGINES = [pytest.param("httpx2", id="httpx2"), pytest.param("httpx", id="user-httpx")]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """httpx2: the client the SDK builds; httpx: an ``httpx.AsyncClient`` the user
    passes (the legacy engine)."""
    return request.param  # type: ignore[no-any-return]


@asynccontextmanager
async def client_on(
    engine: str, fake: FakeClerk, *, sleep: Callable[[float], Any] | None = None, **kwargs: Any
) -> AsyncIterator[AsyncClerk]:
    """An `AsyncClerk` on ``fake`` in process, on ``engine``; ``sleep`` replaces its
    sleep (limiter waits and retries)."""
    if engine == "httpx2":
        clerk = AsyncClerk(CANARY_KEY, server_url=SERVER_URL, transport=fake.transport(), **kwargs)
        user_client = None
    else:
        user_client = httpx.AsyncClient(transport=_HttpxFakeTransport(fake))
        clerk = AsyncClerk(CANARY_KEY, server_url=SERVER_URL, http_client=user_client, **kwargs)
    if sleep is not None:
        clerk._transport.sleep = sleep
    try:
        async with clerk:
            yield clerk
    finally:
        if user_client is not None:
            await user_client.aclose()
