"""Fixtures for the fake's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from clerk_sessions.testing import FakeClerk, ManualClock

# The plugin's fixture, also when clerk-sessions is not installed (no entry point).
from clerk_sessions.testing.pytest_plugin import fake_clerk  # noqa: F401

NEW = "2026-05-12"
OLD = "2025-03-12"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_700_000_000.0)


@pytest.fixture
def fake(clock: ManualClock) -> FakeClerk:
    return FakeClerk(clock=clock)


def raw_client(
    fake: FakeClerk, *, version: str = NEW, key: str | None = None
) -> httpx2.AsyncClient:
    """A plain httpx client on the fake, authenticated like the SDK."""
    return httpx2.AsyncClient(
        transport=fake.transport(),
        base_url="http://fake.clerk.test/v1",
        headers={
            "Authorization": f"Bearer {key if key is not None else fake.secret_key}",
            "Clerk-API-Version": version,
        },
    )


@pytest.fixture
async def http(fake: FakeClerk) -> AsyncIterator[httpx2.AsyncClient]:
    async with raw_client(fake) as client:
        yield client
