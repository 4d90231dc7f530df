"""End to end on loopback ports: the fake served by uvicorn, changed through the SDK over
HTTP, delivering to an app's receiver (FastAPI under uvicorn, verifying with the SDK)."""

from __future__ import annotations

import collections

import pytest

from clerk_sessions import Clerk
from clerk_sessions.testing import FakeClerk

from ._receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SECRET = "whsec_c2Vzc2lvbiBldmVudHMsIGVuZCB0byBlbmQ="


def test_a_bulk_revoke_of_1000_sessions_delivers_1000_events_none_lost() -> None:
    receiver = Receiver(SECRET)
    with (
        receiver.serve() as hook_url,
        FakeClerk(webhook_url=hook_url, webhook_secret=SECRET) as fake,
    ):
        user_id = fake.add_user()
        sessions = {fake.add_session(user_id=user_id)["id"] for _ in range(1_000)}
        with fake.serve() as api_url, Clerk(fake.secret_key, server_url=api_url) as clerk:
            result = clerk.sessions.revoke_all(user_id=user_id)
        assert len(result.revoked) == 1_000
        fake.wait_for_webhooks(timeout=90)
        attempts = fake.webhook_deliveries

    revoked = [e.session.id for e in receiver.events if e.type == "session.revoked" and e.session]
    assert sorted(revoked) == sorted(sessions)  # each once: none lost, none doubled
    assert len({e.id for e in receiver.events}) == 2_000
    assert all(attempt.ok for attempt in attempts)
    # Each session's events arrived in the order they happened.
    kinds: dict[str, list[str]] = collections.defaultdict(list)
    for event in receiver.events:
        assert event.session is not None
        kinds[event.session.id].append(event.type)
    assert set(map(tuple, kinds.values())) == {("session.created", "session.revoked")}


def test_a_receiver_that_fails_first_then_succeeds_gets_every_event_once() -> None:
    receiver = Receiver(SECRET, fail_first=1)
    with (
        receiver.serve() as hook_url,
        FakeClerk(webhook_url=hook_url, webhook_secret=SECRET) as fake,
    ):
        sessions = [fake.add_session()["id"] for _ in range(20)]
        with fake.serve() as api_url, Clerk(fake.secret_key, server_url=api_url) as clerk:
            for session_id in sessions:
                clerk.sessions.revoke(session_id)
        fake.wait_for_webhooks(timeout=60)
        attempts = fake.webhook_deliveries

    assert len(receiver.events) == 40
    assert set(receiver.attempts.values()) == {2}  # one 503, then the 200
    by_event = collections.defaultdict(list)
    for attempt in attempts:
        by_event[attempt.event_id].append((attempt.attempt, attempt.status, attempt.final))
    assert set(map(tuple, by_event.values())) == {((1, 503, False), (2, 200, True))}
