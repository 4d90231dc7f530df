"""FakeClerk(webhook_url=...): session events, signed as Clerk signs them, delivered to a
real receiver on a loopback port, retried, logged, in order, and never in the way of
the API's answers."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from clerk_sessions import Clerk, errors, models
from clerk_sessions.testing import FakeClerk, ManualClock, WebhookDelivery
from clerk_sessions.testing._webhooks import OutgoingEvent, WebhookSender
from clerk_sessions.webhooks import sign_webhook, verify_webhook
from tests.webhooks._receiver import Receiver

pytestmark = pytest.mark.timeout(60)

NO_WAIT = (0.0, 0.0)  # three quick attempts


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(secret="whsec_" + "QUJD" * 8)


@pytest.fixture
def url(receiver: Receiver) -> Iterator[str]:
    with receiver.serve() as endpoint:
        yield endpoint


@pytest.fixture
def fake(receiver: Receiver, url: str, clock: ManualClock) -> Iterator[FakeClerk]:
    with FakeClerk(
        webhook_url=url,
        webhook_secret="whsec_" + "QUJD" * 8,
        clock=clock,
        webhook_retry_delays=NO_WAIT,
    ) as fake:
        yield fake


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/clerk"


def delivered(receiver: Receiver) -> list[tuple[str, str]]:
    return [(event.type, event.session.id if event.session else "") for event in receiver.events]


# ---------------------------------------------------------------- what is sent


def test_seeding_a_session_delivers_session_created(fake: FakeClerk, receiver: Receiver) -> None:
    session = fake.add_session(user_id="user_1")
    fake.wait_for_webhooks()
    assert delivered(receiver) == [("session.created", session["id"])]


def test_the_event_is_clerk_shaped(fake: FakeClerk, receiver: Receiver, clock: ManualClock) -> None:
    session = fake.add_session(user_id="user_1")
    fake.wait_for_webhooks()
    event = receiver.events[0]
    assert set(event.raw) == {
        "data",
        "object",
        "type",
        "timestamp",
        "instance_id",
        "event_attributes",
    }
    assert event.raw["object"] == "event"
    assert event.raw["timestamp"] == int(clock() * 1000)
    assert event.instance_id == fake.instance_id and fake.instance_id.startswith("ins_")
    assert event.data == session
    assert event.session == models.Session.from_json(session)


def test_the_events_verify_with_the_fakes_secret(fake: FakeClerk, receiver: Receiver) -> None:
    fake.add_session()
    fake.wait_for_webhooks()
    assert receiver.events  # the receiver verified it, with the same secret
    assert fake.webhook_secret == "whsec_" + "QUJD" * 8


@pytest.mark.anyio
async def test_a_revoke_through_the_api_delivers_session_revoked(
    fake: FakeClerk, receiver: Receiver
) -> None:
    session = fake.add_session(user_id="user_1")
    async with fake.async_client() as clerk:
        await clerk.sessions.revoke(session["id"])
    await fake.wait_for_webhooks_async()
    assert delivered(receiver) == [
        ("session.created", session["id"]),
        ("session.revoked", session["id"]),
    ]
    revoked = receiver.events[1]
    assert revoked.data["status"] == "revoked"
    assert revoked.raw["event_attributes"]["http_request"]["user_agent"].startswith(
        "clerk-sessions"
    )


def test_a_session_created_through_the_api_is_announced(
    fake: FakeClerk, receiver: Receiver
) -> None:
    fake.add_user("user_1")
    with fake.client() as clerk:
        created = clerk.sessions.create(user_id="user_1")
    fake.wait_for_webhooks()
    assert delivered(receiver) == [("session.created", created.id)]


@pytest.mark.parametrize(
    ("status", "event"), [("ended", "session.ended"), ("removed", "session.removed")]
)
def test_a_status_set_by_the_test_is_announced(
    fake: FakeClerk, receiver: Receiver, status: str, event: str
) -> None:
    session = fake.add_session()
    fake.set_session_status(session["id"], status)
    fake.wait_for_webhooks()
    assert delivered(receiver)[-1] == (event, session["id"])


@pytest.mark.parametrize("status", ["active", "expired", "abandoned", "replaced", "pending"])
def test_statuses_clerk_does_not_announce_send_nothing(
    fake: FakeClerk, receiver: Receiver, status: str
) -> None:
    session = fake.add_session(status="pending" if status == "active" else "active")
    fake.set_session_status(session["id"], status)
    fake.wait_for_webhooks()
    assert [kind for kind, _ in delivered(receiver)] == ["session.created"]


def test_a_revoke_of_a_revoked_session_sends_nothing_more(
    fake: FakeClerk, receiver: Receiver
) -> None:
    session = fake.add_session()
    with fake.client() as clerk:
        clerk.sessions.revoke(session["id"])
        clerk.sessions.revoke(session["id"])
    fake.set_session_status(session["id"], "revoked")
    fake.wait_for_webhooks()
    assert [kind for kind, _ in delivered(receiver)] == ["session.created", "session.revoked"]


def test_each_sessions_events_arrive_in_the_order_they_happened(
    fake: FakeClerk, receiver: Receiver
) -> None:
    sessions = [fake.add_session(user_id="user_1")["id"] for _ in range(30)]
    for session_id in sessions:
        fake.set_session_status(session_id, "ended")
        fake.set_session_status(session_id, "removed")
    fake.wait_for_webhooks()
    for session_id in sessions:
        kinds = [kind for kind, sid in delivered(receiver) if sid == session_id]
        assert kinds == ["session.created", "session.ended", "session.removed"]


def test_the_served_fake_delivers_too(fake: FakeClerk, receiver: Receiver) -> None:
    session = fake.add_session()
    with fake.serve() as api_url, Clerk(fake.secret_key, server_url=api_url) as clerk:
        clerk.sessions.revoke(session["id"])
    fake.wait_for_webhooks()
    assert delivered(receiver)[-1] == ("session.revoked", session["id"])


# ---------------------------------------------------------------- attempts and retries


def test_every_attempt_is_logged(fake: FakeClerk) -> None:
    fake.add_session()
    fake.wait_for_webhooks()
    [attempt] = fake.webhook_deliveries
    assert isinstance(attempt, WebhookDelivery)
    assert (attempt.type, attempt.attempt, attempt.status, attempt.error) == (
        "session.created",
        1,
        200,
        None,
    )
    assert attempt.final and attempt.ok and attempt.event_id.startswith("msg_")


def test_a_receiver_that_fails_first_gets_the_event_again(
    receiver: Receiver, fake: FakeClerk
) -> None:
    receiver.fail_first = 1
    session = fake.add_session()
    fake.wait_for_webhooks()
    first, second = fake.webhook_deliveries
    assert (first.status, first.final, second.status, second.final) == (503, False, 200, True)
    assert first.event_id == second.event_id
    assert delivered(receiver) == [("session.created", session["id"])]


def test_a_receiver_that_keeps_failing_is_given_up_on(receiver: Receiver, fake: FakeClerk) -> None:
    receiver.fail_first = 100
    fake.add_session()
    fake.wait_for_webhooks()
    attempts = fake.webhook_deliveries
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert [a.final for a in attempts] == [False, False, True]
    assert not any(a.ok for a in attempts)


def test_a_refused_connection_is_retried_then_given_up_on() -> None:
    with FakeClerk(webhook_url=closed_port_url(), webhook_retry_delays=NO_WAIT) as fake:
        fake.add_session()
        fake.wait_for_webhooks()
        attempts = fake.webhook_deliveries
    assert [(a.attempt, a.status, a.final) for a in attempts] == [
        (1, None, False),
        (2, None, False),
        (3, None, True),
    ]
    assert all(a.error and a.error.startswith("ConnectError") for a in attempts)


def test_the_retries_wait_the_given_delays() -> None:
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    sender = WebhookSender(
        closed_port_url(),
        "whsec_" + "QUJD" * 8,
        retry_delays=(0.5, 2.0, 8.0),
        clock=lambda: 0.0,
        sleep=record,
    )
    sender.submit(
        OutgoingEvent(event_id="msg_1", type="session.created", session_id="s", body=b"{}")
    )
    sender.close(10)
    assert waited == [0.5, 2.0, 8.0]
    assert len(sender.deliveries) == 4


def test_a_delivery_does_not_hold_up_the_apis_answer(fake: FakeClerk, receiver: Receiver) -> None:
    session = fake.add_session()
    fake.wait_for_webhooks()
    receiver.gate.clear()  # the receiver now stalls every delivery
    with fake.client() as clerk:
        assert clerk.sessions.revoke(session["id"]).status == "revoked"
    assert len(fake.webhook_deliveries) == 1  # the revocation's is still on its way
    receiver.gate.set()
    fake.wait_for_webhooks()
    assert delivered(receiver)[-1] == ("session.revoked", session["id"])


def test_waiting_too_long_raises_timeout_error(fake: FakeClerk, receiver: Receiver) -> None:
    receiver.gate.clear()
    fake.add_session()
    with pytest.raises(TimeoutError, match="1 webhook event"):
        fake.wait_for_webhooks(timeout=0.2)
    receiver.gate.set()
    fake.wait_for_webhooks()


# ---------------------------------------------------------------- life cycle


def sender_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "FakeClerk-webhooks"]


def test_without_a_url_nothing_is_sent_and_no_thread_starts() -> None:
    before = set(sender_threads())
    fake = FakeClerk()
    fake.add_session()
    fake.wait_for_webhooks()
    assert fake.webhook_deliveries == []
    assert set(sender_threads()) <= before
    assert fake.webhook_secret.startswith("whsec_")


def test_close_delivers_what_is_pending_then_stops_the_thread(receiver: Receiver, url: str) -> None:
    before = set(sender_threads())
    fake = FakeClerk(webhook_url=url, webhook_secret="whsec_" + "QUJD" * 8)
    fake.add_session()
    assert set(sender_threads()) - before
    fake.close()
    assert [a.ok for a in fake.webhook_deliveries] == [True]
    assert set(sender_threads()) <= before


def test_a_closed_fake_starts_delivering_again_on_the_next_event(
    fake: FakeClerk, receiver: Receiver
) -> None:
    fake.add_session()
    fake.close()
    fake.add_session()
    fake.wait_for_webhooks()
    assert len(receiver.events) == 2


def test_reset_empties_the_delivery_log(fake: FakeClerk) -> None:
    fake.add_session()
    fake.wait_for_webhooks()
    fake.reset()
    assert fake.webhook_deliveries == []


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="webhook_url"):
        FakeClerk(webhook_url="localhost:8000/hooks")


def test_an_unusable_secret_is_refused_at_construction() -> None:
    with pytest.raises(errors.ConfigurationError):
        FakeClerk(webhook_url="http://127.0.0.1:9/hooks", webhook_secret="whsec_!!")


def test_negative_retry_delays_are_refused() -> None:
    with pytest.raises(ValueError, match="retry delays"):
        FakeClerk(webhook_url="http://127.0.0.1:9/hooks", webhook_retry_delays=(-1,))


def test_a_generated_secret_signs_what_the_receiver_verifies() -> None:
    fake = FakeClerk()
    body = json.dumps({"type": "user.created", "data": {}})
    headers = sign_webhook(body, secret=fake.webhook_secret)
    assert verify_webhook(body, headers, secret=fake.webhook_secret).type == "user.created"


def test_the_secret_appears_in_no_log_record_or_delivery(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "whsec_" + "QUJD" * 8
    with FakeClerk(
        webhook_url=closed_port_url(), webhook_secret=secret, webhook_retry_delays=NO_WAIT
    ) as fake:
        fake.add_session()
        fake.wait_for_webhooks()
        shown: list[Any] = [repr(d) for d in fake.webhook_deliveries]
    shown += [record.getMessage() for record in caplog.records]
    assert shown
    assert not any(secret.removeprefix("whsec_") in text for text in shown)
