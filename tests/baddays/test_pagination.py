"""Pagination terminates: iterate and revoke_all stop when a page brings no id not seen
before, so a server that ignores offset cannot make them loop."""

from __future__ import annotations

import itertools
from urllib.parse import parse_qs, urlsplit

import pytest

from clerk_sessions import AsyncClerk, Clerk
from tests.core._support import session_json

from ._hostile import SECRET, Conn, HostileServer, send_json

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def ignoring_offset(*pages: list[str]) -> object:
    """Answers listings with ``pages`` in turn, whatever the offset, and always claims
    a million more; revokes answer with the session revoked."""
    turn = itertools.cycle(pages)

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            path = urlsplit(request.path)
            if path.path.endswith("/revoke"):
                body = session_json(request.session_id, status="revoked")
            else:
                assert parse_qs(path.query)["paginated"] == ["true"]
                ids = next(turn)
                body = {"data": [session_json(i) for i in ids], "total_count": 1_000_000}
            if not send_json(conn, body):
                return

    return handler


async def test_iterate_stops_when_a_page_repeats(server: HostileServer) -> None:
    server.handler = ignoring_offset(["a", "b", "c"])  # type: ignore[assignment]
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        ids = [s.id async for s in clerk.sessions.iterate(user_id="u", page_size=3)]
    assert ids == ["a", "b", "c"]
    assert len(server.requests) == 2


async def test_iterate_stops_when_pages_cycle_and_yields_each_session_once(
    server: HostileServer,
) -> None:
    server.handler = ignoring_offset(["a", "b"], ["b", "c"], ["a", "c"])  # type: ignore[assignment]
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        ids = [s.id async for s in clerk.sessions.iterate(user_id="u", page_size=2)]
    assert ids == ["a", "b", "c"]
    assert len(server.requests) == 3


async def test_revoke_all_terminates_against_a_server_that_ignores_offset(
    server: HostileServer,
) -> None:
    # A full page (revoke_all lists 500 at a time), so only the repeat can stop it.
    page = [f"sess_{n}" for n in range(500)]
    server.handler = ignoring_offset(page)  # type: ignore[assignment]
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        result = await clerk.sessions.revoke_all(user_id="u", concurrency=16)
    assert set(result.revoked) == set(page) and not result.failed
    # Two listings of two pages each (the second repeats the first), one revoke each.
    assert len(server.requests) == 2 + 500 + 2


def test_the_sync_iterator_stops_too(server: HostileServer) -> None:
    server.handler = ignoring_offset(["a", "b"])  # type: ignore[assignment]
    with Clerk(SECRET, server_url=server.url) as clerk:
        assert [s.id for s in clerk.sessions.iterate(user_id="u", page_size=2)] == ["a", "b"]
