"""Helpers for the bulk tests: an in-process fake, and a transport that lets a test act
on every request (to change the server's state under a running call)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import pytest

from clerk_sessions import AsyncClerk, RetryConfig
from clerk_sessions._config import BackoffStrategy
from clerk_sessions.testing import FakeClerk
from clerk_sessions.testing._server import BackgroundServer

FAST_RETRIES = RetryConfig(
    backoff=BackoffStrategy(
        initial_interval_ms=1, max_interval_ms=5, exponent=2, max_elapsed_time_ms=10_000
    ),
    max_attempts=3,
)


class HookTransport(httpx.AsyncBaseTransport):
    """Calls ``hook(request)`` before handing each request to ``inner``."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, hook: Callable[[httpx.Request], None]
    ) -> None:
        self._inner = inner
        self._hook = hook

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._hook(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def hooked_client(
    fake: FakeClerk, hook: Callable[[httpx.Request], None], **kwargs: object
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


@contextlib.asynccontextmanager
async def serve(fake: FakeClerk) -> AsyncIterator[str]:
    """``fake.serve_async()``, with Nagle's algorithm off on the listening socket.

    Without TCP_NODELAY (the accepted sockets inherit it), uvicorn's separate writes of
    a response head and body meet the client's delayed ACK: measured here, every request
    to the fake took 45 ms instead of 0.7 ms, which also blurs request timing at the
    quota boundary. Remove once the fake's server sets it.
    """
    server = BackgroundServer(fake.app, host="127.0.0.1", port=0)
    server._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await anyio.to_thread.run_sync(server.start)
    try:
        yield f"http://127.0.0.1:{server.port}/v1"
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.stop)
