"""The SDK's own OpenTelemetry signals: a span per operation call, and five metrics.

API.md ("Observability") is the contract; docs/how-to/opentelemetry.md shows what an
exporter gets. The core calls in through four doors, each cheap when nothing records:

- `instruments()`: None while OpenTelemetry is not in the process;
- `start_call`, on every request once OpenTelemetry is loaded: one operation call that
  sends one logical request (the transport reports its answers, failed attempts,
  limiter waits and retries to the `Call` it gets);
- `Instruments.bulk`: a bulk operation, whose span is the parent of its requests' spans;
- `job_item`: one item of a durable job worked.

When OpenTelemetry counts as present. This module never imports it on its own. A tracer
or meter provider is set through ``opentelemetry.trace`` or ``opentelemetry.metrics``
(by the application, or by ``opentelemetry-instrument`` at start-up), so until one of
them is in ``sys.modules`` nobody can be listening, and a request pays two dictionary
lookups to find that out: the transport makes them itself (`loaded_in`), so that until
then a request runs no code of this module. The first request after either appears
builds the instruments, once: the API's proxies, which follow a provider set later. So
a process without ``opentelemetry-api`` imports nothing of it, and neither does one that
has it installed but never loads it.

With the API and no provider, a call costs a no-op span (``is_recording()`` is False:
no attribute is computed, no context attached) and four no-op metric calls, whose
attribute mappings are built once per operation and status, never per call.

What is recorded, and what never is: operation names, the URL *template* (never a
concrete path or query: ids stay out), the server's host name, status codes, Clerk's
trace id, counts and durations, and exception class names. Never a header, a body, a
message or a URL: they hold the secret key, tokens and refresh tokens.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from clerk_sessions._errors import APIConnectionError, APITimeoutError, ClerkErrors
from clerk_sessions._version import __version__

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.metrics import Counter, Histogram
    from opentelemetry.trace import Span

    from clerk_sessions.models import BulkRevokeResult

__all__ = [
    "DURATION_BUCKETS_S",
    "JOB_OUTCOMES",
    "METRICS_MODULE",
    "TRACE_MODULE",
    "WAIT_BUCKETS_S",
    "Bulk",
    "Call",
    "Instruments",
    "Operation",
    "instruments",
    "job_item",
    "loaded_in",
    "retry_cause",
    "start_call",
]

Sleep = Callable[[float], Awaitable[Any]]
Attributes = Mapping[str, "str | int | float"]

#: The modules through which a provider is set: one of them is loaded before anybody can
#: listen. The transport looks them up in `loaded_in` before it calls `start_call`.
TRACE_MODULE = "opentelemetry.trace"
METRICS_MODULE = "opentelemetry.metrics"
#: Where they are looked up: ``sys.modules`` (a benchmark swaps it to compare a process
#: that has loaded OpenTelemetry with one that has not).
loaded_in: Mapping[str, object] = sys.modules

#: Bucket boundaries (seconds) of ``clerk.client.duration``: the HTTP semantic
#: conventions' boundaries, then longer ones for the bulk operations (minutes at quota).
DURATION_BUCKETS_S = (
    *(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0, 300.0, 1800.0),
)
#: Bucket boundaries (seconds) of ``clerk.rate_limit.wait``; the first bucket, up to 0,
#: counts the requests that did not wait at all.
WAIT_BUCKETS_S = (0.0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: The values of ``clerk.job.outcome``.
JOB_OUTCOMES = ("revoked", "already_revoked", "not_found", "failed")


class Operation:
    """An operation as the telemetry names it: its span's name and static attributes,
    and the attribute mappings of its metrics, each built once.

    ``method`` and ``template`` are its request's (``""`` for a bulk operation, which
    sends many requests).
    """

    __slots__ = ("_by_error", "_by_status", "method", "name", "ok", "span_attributes", "span_name")

    def __init__(
        self, name: str, method: str = "", template: str = "", *, span_name: str | None = None
    ) -> None:
        self.name = name
        self.method = method
        self.span_name = span_name or f"clerk.sessions.{name}"
        attributes: dict[str, str] = {"clerk.operation": name}
        if method:
            attributes["http.request.method"] = method
        if template:
            attributes["url.template"] = template
        self.span_attributes: Attributes = attributes
        #: The attributes of a call that succeeded (``clerk.client.duration``).
        self.ok: Attributes = {"clerk.operation": name}
        self._by_status: dict[int, Attributes] = {}
        self._by_error: dict[str, Attributes] = {}

    def __repr__(self) -> str:
        return f"Operation({self.name!r})"

    def status_attributes(self, status: int) -> Attributes:
        """``clerk.operation`` and ``http.response.status_code``."""
        attributes = self._by_status.get(status)
        if attributes is None:
            attributes = {"clerk.operation": self.name, "http.response.status_code": status}
            self._by_status[status] = attributes
        return attributes

    def error_attributes(self, error_type: str) -> Attributes:
        """``clerk.operation`` and ``error.type``."""
        attributes = self._by_error.get(error_type)
        if attributes is None:
            attributes = self._by_error[error_type] = {
                "clerk.operation": self.name,
                "error.type": error_type,
            }
        return attributes


@lru_cache(maxsize=64)
def _server_address(base_url: str) -> str:
    return urlsplit(base_url).hostname or ""


def retry_cause(failure: BaseException | None) -> str:
    """``clerk.retry.cause`` of a retry after ``failure``: ``rate_limited`` (429),
    ``server_error`` (5XX), ``timeout``, ``connection_error`` (no answer), else the
    exception's class name."""
    status = getattr(failure, "status_code", None)
    if status == 429:
        return "rate_limited"
    if isinstance(status, int) and status >= 500:
        return "server_error"
    if isinstance(failure, APITimeoutError):
        return "timeout"
    if isinstance(failure, APIConnectionError):
        return "connection_error"
    return type(failure).__name__


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Instruments:
    """The tracer and the five instruments, made once per process (`instruments`)."""

    def __init__(self) -> None:
        from opentelemetry import context, metrics, trace

        self.tracer = trace.get_tracer("clerk_sessions", __version__)
        meter = metrics.get_meter("clerk_sessions", __version__)
        self.requests: Counter = meter.create_counter(
            "clerk.client.requests",
            unit="{request}",
            description="HTTP requests sent to Clerk (each attempt), by operation and "
            "status code, or error type when no answer came.",
        )
        self.duration: Histogram = meter.create_histogram(
            "clerk.client.duration",
            unit="s",
            description="Duration of each operation call, its rate-limit waits and "
            "retries included.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self.retries: Counter = meter.create_counter(
            "clerk.client.retries", unit="{retry}", description="Retries, by cause."
        )
        self.rate_limit_wait: Histogram = meter.create_histogram(
            "clerk.rate_limit.wait",
            unit="s",
            description="Time each request waited for the client-side rate limiter.",
            explicit_bucket_boundaries_advisory=WAIT_BUCKETS_S,
        )
        self.job_items: Counter = meter.create_counter(
            "clerk.jobs.items",
            unit="{item}",
            description="Items of durable revocation jobs worked, by outcome.",
        )
        self.client_kind = trace.SpanKind.CLIENT
        self.error_status = trace.Status(trace.StatusCode.ERROR)
        self.set_span_in_context: Callable[[Span], Context] = trace.set_span_in_context
        self.attach = context.attach
        self.detach = context.detach
        self._causes: dict[str, Attributes] = {}
        self._outcomes: dict[str, Attributes] = {
            outcome: {"clerk.job.outcome": outcome} for outcome in JOB_OUTCOMES
        }

    def bulk(self, operation: Operation, base_url: str) -> Bulk:
        """Start recording one bulk call: its span is current until `Bulk.end`."""
        return Bulk(self, operation, base_url)

    def cause_attributes(self, cause: str) -> Attributes:
        attributes = self._causes.get(cause)
        if attributes is None:
            attributes = self._causes[cause] = {"clerk.retry.cause": cause}
        return attributes

    def job_item(self, outcome: str) -> None:
        self.job_items.add(1, self._outcomes[outcome])


class _Span:
    """What a call and a bulk call share: the span, current while it records, and the
    duration of the call."""

    __slots__ = ("_instruments", "_operation", "_span", "_started", "_token", "recording")

    def _start(self, instruments: Instruments, operation: Operation, base_url: str) -> None:
        self._instruments = instruments
        self._operation = operation
        span = instruments.tracer.start_span(
            operation.span_name,
            kind=instruments.client_kind,
            attributes=operation.span_attributes,
        )
        self._span = span
        #: Whether anything records the span: when not, nothing is computed for it.
        self.recording = span.is_recording()
        self._token: Token[Context] | None = None
        if self.recording:
            span.set_attribute("server.address", _server_address(base_url))
            # Current for what runs inside the call: the requests of a bulk call, and
            # the spans of an instrumented HTTP library under a request.
            self._token = instruments.attach(instruments.set_span_in_context(span))
        self._started = time.perf_counter()

    def _finish(self, exc: BaseException | None, attributes: dict[str, Any] | None) -> None:
        instruments = self._instruments
        operation = self._operation
        elapsed = time.perf_counter() - self._started
        if exc is None:
            instruments.duration.record(elapsed, operation.ok)
        else:
            instruments.duration.record(elapsed, operation.error_attributes(type(exc).__name__))
        if attributes is None:  # the span does not record
            return
        span = self._span
        if exc is not None:
            attributes["error.type"] = type(exc).__name__
            span.set_status(instruments.error_status)
        span.set_attributes(attributes)
        span.end()
        assert self._token is not None
        instruments.detach(self._token)


class Call(_Span):
    """One operation call that sends one logical request, as the transport runs it.

    The transport tells it of each answer (`answered`) and of each attempt that raised
    (`attempt_failed`), waits through it (`limiter_sleep` for the rate limiter, then
    `acquired`; `retry_sleep` between attempts) and ends it (`end`). Every request sent
    is counted once: with its status when an answer came (even one that then failed to
    decode), else with the error's type.
    """

    __slots__ = ("_sleep", "acquire_wait_s", "answer", "failure", "status", "trace_id", "wait_s")

    def __init__(
        self, instruments: Instruments, operation: Operation, base_url: str, sleep: Sleep
    ) -> None:
        self._start(instruments, operation, base_url)
        self._sleep = sleep
        #: The current attempt's answer, until the attempt failed (None: no answer).
        self.answer: int | None = None
        #: The last answer's status code and Clerk trace id.
        self.status: int | None = None
        self.trace_id: str | None = None
        self.failure: BaseException | None = None
        self.wait_s = 0.0
        self.acquire_wait_s = 0.0

    def answered(self, status: int, trace_id: str | None) -> None:
        """The current attempt got an answer (``trace_id``: its header, read only while
        the span records)."""
        self.answer = self.status = status
        self.trace_id = trace_id
        self._instruments.requests.add(1, self._operation.status_attributes(status))

    def attempt_failed(self, exc: BaseException) -> None:
        """The current attempt raised ``exc`` (after an answer, or with none)."""
        self.failure = exc
        if self.answer is None:
            attributes = self._operation.error_attributes(type(exc).__name__)
            self._instruments.requests.add(1, attributes)
            return
        self.answer = None  # for the next attempt
        if self.recording and self.trace_id is None and isinstance(exc, ClerkErrors):
            # Clerk names the request in its error body too.
            self.trace_id = exc.clerk_trace_id

    async def limiter_sleep(self, seconds: float) -> None:
        """The rate limiter's sleep: counted as this request's wait."""
        self.acquire_wait_s += seconds
        await self._sleep(seconds)

    def acquired(self) -> None:
        """The rate limiter let the current attempt start."""
        wait = self.acquire_wait_s
        self.acquire_wait_s = 0.0
        self.wait_s += wait
        self._instruments.rate_limit_wait.record(wait)

    async def retry_sleep(self, seconds: float) -> None:
        """The retry policy's sleep before the next attempt: one retry."""
        instruments = self._instruments
        failure = self.failure
        cause = retry_cause(failure)
        instruments.retries.add(1, instruments.cause_attributes(cause))
        if self.recording:
            event: dict[str, Any] = {
                "clerk.retry.wait_ms": _ms(seconds),
                "clerk.retry.cause": cause,
            }
            status = getattr(failure, "status_code", None)
            if isinstance(status, int):
                event["http.response.status_code"] = status
            self._span.add_event("retry", event)
        await self._sleep(seconds)

    def end(self, exc: BaseException | None, attempts: int) -> None:
        """The call returned (``exc`` None) or raised ``exc``, after ``attempts``."""
        if not self.recording:
            if exc is None:  # the common case, inlined
                elapsed = time.perf_counter() - self._started
                self._instruments.duration.record(elapsed, self._operation.ok)
            else:
                self._finish(exc, None)
            return
        attributes: dict[str, Any] = {
            "clerk.attempts": attempts,
            "clerk.rate_limit.wait_ms": _ms(self.wait_s),
        }
        if self.status is not None:
            attributes["http.response.status_code"] = self.status
        if self.trace_id:
            attributes["clerk.trace_id"] = self.trace_id
        self._finish(exc, attributes)


class Bulk(_Span):
    """One bulk call (``revoke_many``, ``revoke_all``): its span is the parent of its
    requests' spans, and carries how many sessions were revoked and failed."""

    __slots__ = ()

    def __init__(self, instruments: Instruments, operation: Operation, base_url: str) -> None:
        self._start(instruments, operation, base_url)

    def end(self, exc: BaseException | None, result: BulkRevokeResult | None) -> None:
        """The call returned ``result``, or raised ``exc`` (with the partial result it
        carries, if any)."""
        if not self.recording:
            self._finish(exc, None)
            return
        attributes: dict[str, Any] = {}
        if result is not None:
            attributes["clerk.bulk.revoked"] = len(result.revoked)
            attributes["clerk.bulk.failed"] = len(result.failed)
        self._finish(exc, attributes)


_instruments: Instruments | None = None
_making = threading.Lock()


def instruments() -> Instruments | None:
    """The process's instruments; None while OpenTelemetry is not loaded (see above)."""
    if _instruments is None and (TRACE_MODULE in loaded_in or METRICS_MODULE in loaded_in):
        return _make()
    return _instruments


def _make() -> Instruments:
    global _instruments
    with _making:  # the sync facade's threads may all make their first call at once
        if _instruments is None:
            _instruments = Instruments()
        return _instruments


def start_call(operation: Operation, base_url: str, sleep: Sleep) -> Call:
    """Start recording one call of ``operation`` against ``base_url`` (``sleep``: the
    transport's, which the `Call` waits with). Called once OpenTelemetry is loaded (the
    caller has looked in `loaded_in`)."""
    telemetry = _instruments
    return Call(telemetry if telemetry is not None else _make(), operation, base_url, sleep)


def job_item(outcome: str) -> None:
    """Count one item of a durable job worked to ``outcome`` (one of `JOB_OUTCOMES`)."""
    telemetry = instruments()
    if telemetry is not None:
        telemetry.job_item(outcome)
