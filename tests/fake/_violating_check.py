"""Run only in a subprocess by test_validation.py (its name keeps pytest from collecting it)."""

from __future__ import annotations

import httpx2
import pytest

from clerk_sessions.testing import FakeClerk


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_fetch_a_session() -> None:
    fake = FakeClerk()
    session = fake.add_session()
    async with httpx2.AsyncClient(transport=fake.transport(), base_url="http://x/v1") as client:
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        await client.get(f"/sessions/{session['id']}", headers=headers)
