"""pytest plugin of clerk-sessions: the ``fake_clerk`` fixture.

Registered through the ``pytest11`` entry point, so it is imported by every pytest
run in an environment with clerk-sessions installed: it imports nothing heavy, and
the fake (starlette, uvicorn, cryptography) only when a test asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from clerk_sessions.testing import FakeClerk


@pytest.fixture
def fake_clerk() -> Iterator[FakeClerk]:
    """A fresh :class:`~clerk_sessions.testing.FakeClerk` for each test.

    Skips the test when the ``testing`` extra (starlette, uvicorn) is not installed.
    """
    pytest.importorskip("starlette", reason="the fake_clerk fixture needs clerk-sessions[testing]")
    pytest.importorskip("uvicorn", reason="the fake_clerk fixture needs clerk-sessions[testing]")
    from clerk_sessions.testing import FakeClerk

    yield FakeClerk()
