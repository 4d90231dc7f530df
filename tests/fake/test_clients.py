"""The SDK's own clients on the fake: in-process (async and sync) and on a port."""

from __future__ import annotations

import httpx2
import pytest

from clerk_sessions import AsyncClerk, RetryConfig, errors
from clerk_sessions.testing import FakeClerk, FaultConfig


@pytest.mark.anyio
async def test_async_client_revokes_in_process(fake: FakeClerk) -> None:
    session = fake.add_session()
    async with fake.async_client() as clerk:
        revoked = await clerk.sessions.revoke(session["id"])
    assert revoked.status == "revoked"
    assert fake.requests[0].headers["user-agent"].startswith("clerk-sessions/")


@pytest.mark.anyio
async def test_async_client_sees_clerk_errors(fake: FakeClerk) -> None:
    async with fake.async_client() as clerk:
        with pytest.raises(errors.NotFoundError):
            await clerk.sessions.get("sess_nope")


@pytest.mark.anyio
async def test_async_client_sees_a_drop_as_a_connection_error() -> None:
    fake = FakeClerk(faults=FaultConfig(drop_before_rate=1.0))
    session = fake.add_session()
    async with fake.async_client(retry_config=None) as clerk:
        with pytest.raises(errors.APIConnectionError):
            await clerk.sessions.get(session["id"])


def test_sync_client_lists_in_process(fake: FakeClerk) -> None:
    session = fake.add_session(user_id="user_a")
    with fake.client() as clerk:
        listed = clerk.sessions.list(user_id="user_a")
    assert [s.id for s in listed] == [session["id"]]


@pytest.mark.anyio
async def test_async_client_on_a_real_port(fake: FakeClerk) -> None:
    session = fake.add_session()
    async with fake.serve_async() as url, AsyncClerk(fake.secret_key, server_url=url) as clerk:
        token = await clerk.sessions.create_token(session["id"])
    assert token.jwt.count(".") == 2


def test_fake_clerk_fixture_gives_a_fresh_fake(fake_clerk: FakeClerk) -> None:
    assert fake_clerk.sessions == []
    assert fake_clerk.requests == []


def test_retries_are_visible_in_the_attempt_log() -> None:
    fake = FakeClerk(faults=FaultConfig(error_rate=0.5, seed=2))
    session = fake.add_session()
    retry = RetryConfig(max_attempts=10, jitter=False)
    with fake.client(retry_config=retry) as clerk:
        clerk.sessions.get(session["id"])
    statuses = [r.status for r in fake.requests]
    assert statuses[-1] == 200
    assert all(status is not None and status >= 500 for status in statuses[:-1])


def test_transport_can_back_a_plain_httpx_client(fake: FakeClerk) -> None:
    assert isinstance(fake.transport(), httpx2.AsyncBaseTransport)
