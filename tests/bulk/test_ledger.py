"""End to end on a real loopback port, with seeded faults: the ledger is exact.

The fake injects 5XX (JSON and HTML), connections dropped before and after the state
change, truncated bodies, and answers 429 with ``Retry-After`` over its quota. Whatever
happens, revoke_many must account for every id exactly once, and never be rude to the
server: no retry before its ``Retry-After``, never more than ``concurrency`` in flight.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from clerk_sessions import AsyncClerk, RateLimit, RetryConfig, errors
from clerk_sessions.testing import FakeClerk, FaultConfig, Quota, RequestRecord

from .conftest import FAST_RETRIES

pytestmark = pytest.mark.anyio

SESSIONS = 80
CONCURRENCY = 6


def attempts_by_session(records: list[RequestRecord]) -> dict[str, list[RequestRecord]]:
    by_id: dict[str, list[RequestRecord]] = defaultdict(list)
    for record in records:
        if record.method == "POST" and record.raw_path.endswith("/revoke"):
            by_id[record.raw_path.split("/")[3]].append(record)
    return by_id


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_id_is_accounted_for_exactly_once_under_faults(seed: int) -> None:
    fake = FakeClerk(
        seed=seed,
        faults=FaultConfig(
            latency_s=(0.0, 0.002),
            error_rate=0.06,
            html_error_rate=0.03,
            drop_before_rate=0.04,
            drop_after_rate=0.04,
            truncate_rate=0.04,
            seed=seed,
        ),
        # Over this, the fake answers 429 with Retry-After: 1 (its smallest).
        quota=Quota(requests=30, per_seconds=1.0),
    )
    ids = [fake.add_session(user_id=f"user_{n % 7}")["id"] for n in range(SESSIONS)]
    async with (
        fake.serve_async() as url,
        AsyncClerk(fake.secret_key, server_url=url, retry_config=FAST_RETRIES) as clerk,
    ):
        result = await clerk.sessions.revoke_many(iter(ids), concurrency=CONCURRENCY)

    # The union of revoked and failed is the input, with no overlap.
    assert set(result.revoked) | set(result.failed) == set(ids)
    assert not set(result.revoked) & set(result.failed)
    # Every revoked id is revoked on the server.
    assert {fake.get_session(i)["status"] for i in result.revoked} == {"revoked"}

    attempts = attempts_by_session(fake.requests)
    for session_id in ids:
        tries = attempts[session_id]
        # Each id changed state at most once, however often it was retried.
        assert sum(r.state_changed for r in tries) <= 1
        # No retry arrived before the Retry-After of the 429 that preceded it.
        for earlier, later in itertools.pairwise(tries):
            if earlier.status == 429:
                assert later.time >= earlier.time + 1.0
    # An id fails only once its retries ran out, with a typed error.
    for session_id, exc in result.failed.items():
        assert isinstance(exc, errors.ClerkSessionsError)
        assert len(attempts[session_id]) == FAST_RETRIES.max_attempts
    # The server never saw more requests in flight than the concurrency.
    assert max(r.in_flight for r in fake.requests) <= CONCURRENCY

    # The faults really happened (so the properties above were tested, not vacuous).
    faults = {r.fault for r in fake.requests}
    assert {"error_5xx", "html_5xx", "drop_before", "drop_after", "truncate"} <= faults
    assert "quota" in faults


async def test_a_quota_sized_rate_limit_keeps_300_revokes_under_the_quota() -> None:
    """Clerk's development quota, 100 requests per 10 s, scaled to 100 per 1 s so that
    the property (no failure, no 429) is checked in about 3 s instead of 30."""
    fake = FakeClerk(quota=Quota(requests=100, per_seconds=1.0))
    ids = [fake.add_session(user_id="user_1")["id"] for _ in range(300)]
    async with (
        fake.serve_async() as url,
        AsyncClerk(
            fake.secret_key,
            server_url=url,
            retry_config=RetryConfig(),
            rate_limit=RateLimit(100, 1.0),
        ) as clerk,
    ):
        result = await clerk.sessions.revoke_many(ids, concurrency=8)
    assert result.failed == {}
    assert len(result.revoked) == 300
    # The fake counts a request when it arrives; the limiter counts each request's window
    # from its answer, which comes after that, so no window of the fake's is over quota.
    assert sum(r.status == 429 for r in fake.requests) == 0
