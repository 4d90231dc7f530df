"""``clerk.jobs.items``: each item of a durable job worked, by outcome (revoked,
already_revoked, not_found, failed), on asyncio and trio, with a SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clerk_sessions.jobs import RevocationJob
from clerk_sessions.testing import FakeClerk

from .conftest import Telemetry, client_on

pytestmark = pytest.mark.anyio


def outcome(name: str) -> frozenset[tuple[str, Any]]:
    return frozenset({("clerk.job.outcome", name)})


async def test_each_session_item_is_counted_by_its_outcome(
    fake: FakeClerk, otel: Telemetry, tmp_path: Path
) -> None:
    user_id = fake.add_user()
    active = [fake.add_session(user_id=user_id)["id"] for _ in range(3)]
    ended = fake.add_session(user_id=user_id)["id"]
    fake.set_session_status(ended, "ended")
    ids = [*active, ended, "sess_unknown", "."]  # "." cannot be a path segment: failed
    store = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with (
        await RevocationJob.create(store, "incident", session_ids=ids, chunk_size=2) as job,
        client_on("httpx2", fake, retry_config=None) as clerk,
    ):
        status = await job.work(clerk, concurrency=2)

    assert status.done and status.failed == 2
    assert otel.counter("clerk.jobs.items") == {
        outcome("revoked"): 3,
        outcome("already_revoked"): 1,
        outcome("not_found"): 1,
        outcome("failed"): 1,
    }


async def test_a_user_item_is_revoked_or_already_revoked_when_nothing_was_active(
    fake: FakeClerk, otel: Telemetry, tmp_path: Path
) -> None:
    busy = fake.add_user()
    for _ in range(2):
        fake.add_session(user_id=busy)
    idle = fake.add_user()
    store = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with (
        await RevocationJob.create(store, "users", user_ids=[busy, idle]) as job,
        client_on("httpx2", fake) as clerk,
    ):
        await job.work(clerk)

    assert otel.counter("clerk.jobs.items") == {
        outcome("revoked"): 1,
        outcome("already_revoked"): 1,
    }
