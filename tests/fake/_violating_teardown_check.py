"""Run only in a subprocess by test_validation.py (its name keeps pytest from collecting it).

The fake answers only while a module-scoped fixture is torn down, after the last test's
own check has run: only the check at the end of the session can see that answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx2
import pytest

from clerk_sessions.testing import FakeClerk


async def _fetch(fake: FakeClerk, session_id: str) -> None:
    async with httpx2.AsyncClient(transport=fake.transport(), base_url="http://x/v1") as client:
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        await client.get(f"/sessions/{session_id}", headers=headers)


@pytest.fixture(scope="module")
def fake_that_answers_at_teardown() -> Iterator[tuple[FakeClerk, str]]:
    fake = FakeClerk()
    session_id = fake.add_session()["id"]
    yield fake, session_id
    anyio.run(_fetch, fake, session_id)


def test_nothing_is_sent_during_the_test(
    fake_that_answers_at_teardown: tuple[FakeClerk, str],
) -> None:
    fake, _ = fake_that_answers_at_teardown
    assert fake.requests == []
