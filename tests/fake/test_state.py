"""Seeding, inspecting and resetting the fake's state."""

from __future__ import annotations

import re

import pytest

from clerk_sessions.testing import FakeClerk, ManualClock

CLERK_ID = r"[0-9A-Za-z]{27}"


def test_generated_ids_have_clerks_shapes(fake: FakeClerk) -> None:
    session = fake.add_session()
    assert re.fullmatch(rf"sess_{CLERK_ID}", session["id"])
    assert re.fullmatch(rf"user_{CLERK_ID}", session["user_id"])
    assert re.fullmatch(rf"client_{CLERK_ID}", session["client_id"])


def test_generated_secret_key_is_a_test_key() -> None:
    assert FakeClerk().secret_key.startswith("sk_test_")
    assert FakeClerk().secret_key != FakeClerk().secret_key


def test_same_seed_gives_same_ids() -> None:
    assert FakeClerk(seed=7).add_session()["id"] == FakeClerk(seed=7).add_session()["id"]


def test_timestamps_are_unix_ms_from_the_injected_clock(fake: FakeClerk) -> None:
    session = fake.add_session(user_id="user_a")
    assert session["created_at"] == 1_700_000_000_000
    assert session["updated_at"] == session["last_active_at"] == session["created_at"]
    assert session["expire_at"] == session["created_at"] + 7 * 86_400_000


def test_session_has_latest_activity_and_tasks(fake: FakeClerk) -> None:
    active = fake.add_session()
    pending = fake.add_session(status="pending")
    assert active["latest_activity"]["object"] == "session_activity"
    assert active["tasks"] is None
    assert pending["tasks"] == [{"key": "choose-organization"}]


def test_session_expires_when_the_clock_passes_expire_at(
    fake: FakeClerk, clock: ManualClock
) -> None:
    session = fake.add_session()
    clock.advance(7 * 86_400 + 1)
    stored = fake.get_session(session["id"])
    assert stored["status"] == "expired"
    assert stored["updated_at"] == session["expire_at"]


def test_set_session_status_moves_a_session(fake: FakeClerk) -> None:
    session = fake.add_session()
    assert fake.set_session_status(session["id"], "ended")["status"] == "ended"


def test_unknown_status_is_refused(fake: FakeClerk) -> None:
    with pytest.raises(ValueError, match="unknown session status"):
        fake.add_session(status="sleepy")


def test_sessions_lists_newest_first(fake: FakeClerk, clock: ManualClock) -> None:
    first = fake.add_session()
    clock.advance(1)
    second = fake.add_session()
    same_ms = fake.add_session(created_at=second["created_at"])
    assert [s["id"] for s in fake.sessions] == [same_ms["id"], second["id"], first["id"]]


def test_add_session_creates_its_user_and_client(fake: FakeClerk) -> None:
    session = fake.add_session(user_id="user_x")
    assert "user_x" in fake.users
    assert {"id": session["client_id"], "user_id": "user_x"}.items() <= fake.clients[0].items()


def test_reset_forgets_state_and_restarts_ids(fake: FakeClerk) -> None:
    first = fake.add_session()
    fake.add_template("t")
    fake.reset()
    assert fake.sessions == []
    assert fake.users == []
    assert fake.requests == []
    assert fake.add_session()["id"] == first["id"]


def test_get_session_of_unknown_id_raises_key_error(fake: FakeClerk) -> None:
    with pytest.raises(KeyError):
        fake.get_session("sess_nope")
