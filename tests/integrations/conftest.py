"""Fixtures for the integration tests (FastAPI/Starlette and Django)."""

from __future__ import annotations

import pytest

from clerk_sessions.testing import FakeClerk


@pytest.fixture
def fake() -> FakeClerk:
    """A fresh fake Clerk instance with one signing key."""
    return FakeClerk()
