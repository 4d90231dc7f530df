"""Bounded time: timeout_ms bounds each attempt from connect to the last byte, the retry
budget counts from the first attempt, and /jwks has its own short deadline."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from clerk_sessions import AsyncClerk, BackoffStrategy, Clerk, RetryConfig, errors
from tests.core._support import session_json
from tests.verification.conftest import KID, OTHER_KEY, OTHER_KID, VECTORS, mint, payload

from ._hostile import SECRET, Conn, HostileServer, drip, response_head, send_json

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(40)]


def dripping(conn: Conn) -> None:
    """A complete answer, one byte every 50 ms: about 40 s in all, and never 50 ms
    without a byte, so no per-read timeout ever trips."""
    while (request := conn.read_request()) is not None:
        body = json.dumps(session_json(request.session_id)).encode()
        head = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        drip(conn, response_head(200, head) + body, 0.05)


def silent(conn: Conn) -> None:
    """Reads requests and never answers."""
    while conn.read_request() is not None:
        pass


async def test_a_dripping_server_cannot_stretch_an_attempt_past_timeout_ms(
    server: HostileServer,
) -> None:
    server.handler = dripping
    async with AsyncClerk(
        SECRET, server_url=server.url, timeout_ms=1000, retry_config=None
    ) as clerk:
        started = time.monotonic()
        with pytest.raises(errors.APITimeoutError, match="from connect to the last byte"):
            await clerk.sessions.get("sess_1")
    # 1 s, plus scheduling; the dripped answer would take about 40 s.
    assert time.monotonic() - started < 5


def test_the_sync_client_has_the_same_deadline(server: HostileServer) -> None:
    server.handler = dripping
    with Clerk(SECRET, server_url=server.url, timeout_ms=1000, retry_config=None) as clerk:
        started = time.monotonic()
        with pytest.raises(errors.APITimeoutError):
            clerk.sessions.get("sess_1")
    assert time.monotonic() - started < 5


async def test_the_retry_budget_counts_from_the_first_attempt(server: HostileServer) -> None:
    server.handler = silent
    budget = RetryConfig(
        backoff=BackoffStrategy(
            initial_interval_ms=100, max_interval_ms=100, exponent=1, max_elapsed_time_ms=1500
        ),
        max_attempts=100,
        jitter=0,
    )
    async with AsyncClerk(
        SECRET, server_url=server.url, timeout_ms=500, retry_config=budget
    ) as clerk:
        started = time.monotonic()
        with pytest.raises(errors.APITimeoutError):
            await clerk.sessions.get("sess_1")
        elapsed = time.monotonic() - started
    # Counted from the first attempt, and the last retry cut to what is left: 1.5 s.
    # Counted from the first failure, as before, it was at least 0.5 + 1.5 s.
    assert 1.4 < elapsed < 1.9
    assert len(server.requests) >= 3


def jwks_then(after: Any) -> Any:
    """Serves the JWKS once, then hands every later connection to ``after``."""
    served = False

    def handler(conn: Conn) -> None:
        nonlocal served
        if served:
            after(conn)
            return
        request = conn.read_request()
        if request is None:
            return
        assert request.path.endswith("/jwks")
        served = True
        send_json(conn, VECTORS["jwks"], Connection="close")

    return handler


def live_token(kid: str = KID, **kwargs: Any) -> str:
    now = int(time.time())
    return mint(payload(iat=now - 10, nbf=now - 10, exp=now + 300), kid=kid, **kwargs)


async def test_authentication_during_a_jwks_outage_fails_within_five_seconds(
    server: HostileServer,
) -> None:
    server.handler = silent
    # Default settings: 30 s per attempt and a 60 s retry budget would hold each
    # request of a web app for a minute and a half.
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        started = time.monotonic()
        state = await clerk.authenticate_request({"Authorization": f"Bearer {live_token()}"})
        elapsed = time.monotonic() - started
    assert not state.is_signed_in
    assert state.reason == "jwks_unavailable"
    assert 4.5 < elapsed < 6.5
    assert server.connections <= 2


async def test_a_jwks_outage_keeps_the_last_good_keys(server: HostileServer) -> None:
    server.handler = jwks_then(silent)
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        assert (await clerk.verify_token(live_token())).session_id
        # Past the refetch cooldown, a token with a new kid makes it fetch again, into
        # the outage.
        verifier = clerk._auth.verifier()
        verifier._clock = lambda: time.monotonic() + 60
        started = time.monotonic()
        with pytest.raises(errors.TokenVerificationError) as info:
            await clerk.verify_token(live_token(OTHER_KID, key=OTHER_KEY))
        assert time.monotonic() - started < 6.5
        assert info.value.reason == "unknown_kid"
        # The keys fetched before the outage still verify, without a request.
        requests = len(server.requests)
        assert (await clerk.verify_token(live_token())).session_id
        assert len(server.requests) == requests
