"""The sync facade's spans are children of the span current in the calling thread: the
portal runs each call in a copy of the caller's context, on its fast call path and on
anyio's (the fast paths off)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from clerk_sessions import Clerk, _portal
from clerk_sessions.testing import FakeClerk

from .conftest import CANARY_KEY, SERVER_URL, Telemetry, _HttpxFakeTransport

tracer = trace.get_tracer("tests")


@pytest.fixture(params=[True, False], ids=["fast-path", "anyio-portal"])
def call_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The portal's own call path, or anyio's `BlockingPortal` (the fast paths off)."""
    monkeypatch.setattr(_portal, "FAST_PATHS", request.param)


@pytest.fixture(params=["httpx2", "httpx"], ids=["httpx2", "user-httpx"])
def clerk(request: pytest.FixtureRequest, fake: FakeClerk) -> Iterator[Clerk]:
    if request.param == "httpx2":
        client = Clerk(CANARY_KEY, server_url=SERVER_URL, transport=fake.transport())
    else:
        http = httpx.AsyncClient(transport=_HttpxFakeTransport(fake))
        client = Clerk(CANARY_KEY, server_url=SERVER_URL, http_client=http)
    with client:
        yield client


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def test_a_sync_calls_span_is_a_child_of_the_calling_threads_span(
    call_path: None, clerk: Clerk, fake: FakeClerk, otel: Telemetry
) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    with tracer.start_as_current_span("view") as view:
        clerk.sessions.get(session_id)
    clerk.sessions.get(session_id)  # no span current: a root

    inside, outside = otel.named("clerk.sessions.get")
    assert parent_of(inside) == view.get_span_context().span_id
    assert parent_of(outside) is None


def test_threads_sharing_one_clerk_each_get_their_own_parent(
    call_path: None, fake: FakeClerk, otel: Telemetry
) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    parents: dict[str, int] = {}
    barrier = threading.Barrier(4)

    with Clerk(CANARY_KEY, server_url=SERVER_URL, transport=fake.transport()) as clerk:

        def worker(name: str) -> None:
            with tracer.start_as_current_span(name) as span:
                parents[name] = span.get_span_context().span_id
                barrier.wait(timeout=10)  # all four calls in flight together
                clerk.sessions.get(session_id)

        threads = [threading.Thread(target=worker, args=(f"thread-{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    gets = otel.named("clerk.sessions.get")
    assert sorted(parent_of(s) for s in gets) == sorted(parents.values())  # type: ignore[type-var]


def test_each_page_of_a_sync_iterate_is_a_child_of_the_span_current_when_it_is_fetched(
    call_path: None, clerk: Clerk, fake: FakeClerk, otel: Telemetry
) -> None:
    user_id = fake.add_user()
    for _ in range(3):
        fake.add_session(user_id=user_id)
    pages = clerk.sessions.iterate(user_id=user_id, page_size=2)
    with tracer.start_as_current_span("first") as first:
        next(pages)  # fetches the first page
    next(pages)  # from the buffer: no request
    with tracer.start_as_current_span("second") as second:
        rest = list(pages)  # the second page, then the end

    assert len(rest) == 1
    spans = otel.named("clerk.sessions.list_page")
    assert [parent_of(s) for s in spans] == [
        first.get_span_context().span_id,
        second.get_span_context().span_id,
    ]


def test_a_sync_bulk_call_parents_its_requests_under_the_calling_threads_span(
    call_path: None, clerk: Clerk, fake: FakeClerk, otel: Telemetry
) -> None:
    user_id = fake.add_user()
    ids = [fake.add_session(user_id=user_id)["id"] for _ in range(3)]
    with tracer.start_as_current_span("incident") as incident:
        clerk.sessions.revoke_many(ids, concurrency=3)

    bulk = otel.span("clerk.sessions.revoke_many")
    revokes = otel.named("clerk.sessions.revoke")
    assert parent_of(bulk) == incident.get_span_context().span_id
    assert [parent_of(s) for s in revokes] == [bulk.context.span_id] * 3
