"""Fixtures for the sync facade's tests: a FakeClerk in-process or on a loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from clerk_sessions import Clerk
from clerk_sessions.testing import FakeClerk


def portal_threads() -> list[threading.Thread]:
    """The live portal threads of every `Clerk` in this process."""
    return [t for t in threading.enumerate() if t.name.startswith("clerk-portal")]


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk()


@pytest.fixture
def clerk(fake: FakeClerk) -> Iterator[Clerk]:
    """A `Clerk` on the fake, in-process (no socket)."""
    with fake.client() as clerk:
        yield clerk


@pytest.fixture
def served_url(fake: FakeClerk) -> Iterator[str]:
    """The fake on a real loopback port."""
    with fake.serve() as url:
        yield url


@pytest.fixture(autouse=True)
def _no_portal_thread_left_behind() -> Iterator[None]:
    before = set(portal_threads())
    yield
    leaked = set(portal_threads()) - before
    assert not leaked, f"portal threads left running: {leaked}"
