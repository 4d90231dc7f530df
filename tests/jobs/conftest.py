"""Helpers for the job tests: fast retries, and ledgers read from the fake's own state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import httpx2

from clerk_sessions import AsyncClerk, RetryConfig
from clerk_sessions._config import BackoffStrategy
from clerk_sessions.testing import FakeClerk

FAST_RETRIES = RetryConfig(
    backoff=BackoffStrategy(
        initial_interval_ms=1, max_interval_ms=5, exponent=2, max_elapsed_time_ms=10_000
    ),
    max_attempts=4,
    max_retry_after_ms=10,
)


def revoke_counts(fake: FakeClerk) -> Counter[str]:
    """How many revoke attempts the fake saw for each session id."""
    counts: Counter[str] = Counter()
    for record in fake.requests:
        parts = record.raw_path.split("/")
        if record.method == "POST" and len(parts) == 5 and parts[4] == "revoke":
            counts[parts[3]] += 1
    return counts


def statuses(fake: FakeClerk) -> dict[str, str]:
    """Every session's status, by id, as the fake holds it."""
    return {session["id"]: session["status"] for session in fake.sessions}


class GateTransport(httpx2.AsyncBaseTransport):
    """Awaits ``gate(request)`` before handing each request to ``inner``."""

    def __init__(
        self, inner: httpx2.AsyncBaseTransport, gate: Callable[[httpx2.Request], Awaitable[None]]
    ) -> None:
        self._inner = inner
        self._gate = gate

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await self._gate(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def gated_client(
    fake: FakeClerk, gate: Callable[[httpx2.Request], Awaitable[None]], **kwargs: object
) -> AsyncClerk:
    return AsyncClerk(
        fake.secret_key,
        server_url="http://fake.clerk.test/v1",
        transport=GateTransport(fake.transport(), gate),
        **kwargs,  # type: ignore[arg-type]
    )
