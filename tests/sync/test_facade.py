"""The sync facade's behaviour: results, errors, iteration, lifecycle."""

from __future__ import annotations

import asyncio
import traceback
from contextlib import suppress

import pytest

from clerk_sessions import Clerk, errors
from clerk_sessions._resources.pagination import SessionIterator
from clerk_sessions.errors import AsyncContextError, ClientClosedError
from clerk_sessions.testing import FakeClerk

from .conftest import portal_threads


def test_get_returns_the_session(fake: FakeClerk, clerk: Clerk) -> None:
    stored = fake.add_session(user_id="user_1")

    session = clerk.sessions.get(stored["id"])

    assert session.id == stored["id"]
    assert session.user_id == "user_1"


def test_revoke_changes_the_session_on_the_server(fake: FakeClerk, clerk: Clerk) -> None:
    stored = fake.add_session(user_id="user_1")

    clerk.sessions.revoke(stored["id"])

    assert fake.get_session(stored["id"])["status"] == "revoked"


def test_errors_reach_the_caller_typed_with_the_callers_frame(clerk: Clerk) -> None:
    with pytest.raises(errors.NotFoundError) as raised:
        clerk.sessions.get("sess_missing")

    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "test_errors_reach_the_caller_typed_with_the_callers_frame" in frames
    # ... and the frames where it was raised, on the portal.
    assert "_attempt" in frames


def test_argument_errors_are_raised_as_the_async_code_raises_them(clerk: Clerk) -> None:
    with pytest.raises(ValueError, match="page_size"):
        clerk.sessions.iterate(user_id="user_1", page_size=0)


def test_iterate_yields_every_session_across_pages(fake: FakeClerk, clerk: Clerk) -> None:
    ids = {fake.add_session(user_id="user_1")["id"] for _ in range(7)}

    seen = [s.id for s in clerk.sessions.iterate(user_id="user_1", page_size=3)]

    assert sorted(seen) == sorted(ids)


def test_iterate_stopped_early_closes_the_async_iterator(
    fake: FakeClerk, clerk: Clerk, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(5):
        fake.add_session(user_id="user_1")
    closed: list[bool] = []
    original = SessionIterator.aclose

    async def spy(self: SessionIterator) -> None:
        closed.append(asyncio.get_running_loop() is not None)
        await original(self)

    monkeypatch.setattr(SessionIterator, "aclose", spy)
    for _session in clerk.sessions.iterate(user_id="user_1", page_size=2):
        break  # the generator is dropped here, which closes it

    assert closed == [True]


def test_the_portal_starts_on_the_first_call_not_at_construction(fake: FakeClerk) -> None:
    with fake.client() as clerk:
        assert portal_threads() == []
        clerk.sessions.list(user_id="user_1")
        assert len(portal_threads()) == 1


def test_close_stops_the_portal_thread(fake: FakeClerk) -> None:
    clerk = fake.client()
    clerk.sessions.list(user_id="user_1")
    thread = portal_threads()[0]

    clerk.close()

    assert not thread.is_alive()
    assert portal_threads() == []


def test_the_with_block_closes_the_client(fake: FakeClerk) -> None:
    with fake.client() as clerk:
        clerk.sessions.list(user_id="user_1")
        pool = clerk._portal.client._transport.client

    assert pool.is_closed
    assert portal_threads() == []


def test_close_is_idempotent_and_works_before_any_call(fake: FakeClerk) -> None:
    clerk = fake.client()
    clerk.close()
    clerk.close()


def test_a_call_after_close_raises_client_closed(fake: FakeClerk) -> None:
    clerk = fake.client()
    clerk.sessions.list(user_id="user_1")
    clerk.close()

    with pytest.raises(ClientClosedError, match="closed"):
        clerk.sessions.list(user_id="user_1")


def test_no_secret_key_raises_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_SECRET_KEY", raising=False)

    with pytest.raises(errors.ConfigurationError, match="CLERK_SECRET_KEY"):
        Clerk()


def test_repr_never_shows_the_secret_key(fake: FakeClerk, clerk: Clerk) -> None:
    assert fake.secret_key not in repr(clerk)
    assert "Clerk(server_url=" in repr(clerk)


def test_a_call_from_a_running_event_loop_points_to_async_clerk(clerk: Clerk) -> None:
    async def view() -> None:
        clerk.sessions.list(user_id="user_1")

    with pytest.raises(AsyncContextError, match="AsyncClerk"):
        asyncio.run(view())


def test_async_context_error_is_a_clerk_sessions_error() -> None:
    assert issubclass(AsyncContextError, errors.ClerkSessionsError)
    assert issubclass(AsyncContextError, RuntimeError)


def test_a_call_from_a_portal_callback_is_refused_instead_of_deadlocking(
    fake: FakeClerk, clerk: Clerk
) -> None:
    stored = fake.add_session(user_id="user_1")
    raised: list[BaseException] = []

    def on_progress(done: int, total: int | None) -> None:
        try:
            clerk.sessions.get(stored["id"])  # runs on the portal's own loop
        except AsyncContextError as exc:
            raised.append(exc)

    clerk.sessions.revoke_many([stored["id"]], on_progress=on_progress)

    assert len(raised) == 1


def test_verify_warns_in_the_callers_thread_too(fake: FakeClerk, clerk: Clerk) -> None:
    stored = fake.add_session(user_id="user_1")

    # The answer does not matter here, only the warning.
    with pytest.warns(DeprecationWarning, match="verify_token"), suppress(errors.ClerkErrors):
        clerk.sessions.verify(stored["id"])


def test_a_worker_thread_that_inherited_a_loops_context_may_call(
    fake: FakeClerk, clerk: Clerk
) -> None:
    # asyncio.to_thread copies the loop's context (anyio.run puts sniffio's "current
    # library" in it) into a thread that runs no loop: blocking there is fine.
    import anyio

    stored = fake.add_session(user_id="user_1")

    async def main() -> str:
        session = await asyncio.to_thread(clerk.sessions.get, stored["id"])
        return session.id

    assert anyio.run(main) == stored["id"]
