"""Helpers for the bulk tests: an in-process fake, and a transport that lets a test act
on every request (to change the server's state under a running call)."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest

from clerk_sessions import AsyncClerk, RetryConfig
from clerk_sessions._config import BackoffStrategy
from clerk_sessions.testing import FakeClerk

FAST_RETRIES = RetryConfig(
    backoff=BackoffStrategy(
        initial_interval_ms=1, max_interval_ms=5, exponent=2, max_elapsed_time_ms=10_000
    ),
    max_attempts=3,
)


class HookTransport(httpx2.AsyncBaseTransport):
    """Calls ``hook(request)`` before handing each request to ``inner``."""

    def __init__(
        self, inner: httpx2.AsyncBaseTransport, hook: Callable[[httpx2.Request], None]
    ) -> None:
        self._inner = inner
        self._hook = hook

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self._hook(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def hooked_client(
    fake: FakeClerk, hook: Callable[[httpx2.Request], None], **kwargs: object
) -> AsyncClerk:
    return AsyncClerk(
        fake.secret_key,
        server_url="http://fake.clerk.test/v1",
        transport=HookTransport(fake.transport(), hook),
        **kwargs,  # type: ignore[arg-type]
    )


def revoke_requests(fake: FakeClerk, session_id: str) -> int:
    """How many revoke attempts for ``session_id`` the fake saw."""
    path = f"/v1/sessions/{session_id}/revoke"
    return sum(1 for r in fake.requests if r.method == "POST" and r.raw_path == path)


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk()
