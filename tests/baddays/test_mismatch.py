"""Answers match questions: get, revoke and verify check the session id in the answer;
a mismatch raises SDKError and that connection is not reused."""

from __future__ import annotations

import warnings

import httpx2
import pytest

from clerk_sessions import AsyncClerk, Clerk, errors
from tests.core._support import session_json

from ._hostile import SECRET, Conn, HostileServer, send_json, serve_sessions

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def out_of_step(conn: Conn) -> None:
    """The first connection answers every request with another session's answer (as a
    connection that lost a response would); later connections are well-behaved."""
    if conn.number > 1:
        serve_sessions(conn)
        return
    while conn.read_request() is not None:
        if not send_json(conn, session_json("sess_OTHER")):
            return


@pytest.mark.parametrize("operation", ["get", "revoke", "verify"])
async def test_an_answer_for_another_session_is_refused_and_its_connection_dropped(
    server: HostileServer, operation: str
) -> None:
    server.handler = out_of_step
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        call = getattr(clerk.sessions, operation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # verify's own warning
            with pytest.raises(errors.SDKError, match="answer is for 'sess_OTHER'") as info:
                await call("sess_MINE")
            session = await call("sess_MINE")
    assert info.value.status_code == 200
    assert session.id == "sess_MINE"
    # Not retried on the same connection, and the next call opened a new one.
    assert len(server.requests) == 2
    assert server.connections == 2


def test_the_sync_client_refuses_it_too(server: HostileServer) -> None:
    server.handler = out_of_step
    with Clerk(SECRET, server_url=server.url) as clerk:
        with pytest.raises(errors.SDKError, match="answer is for 'sess_OTHER'"):
            clerk.sessions.get("sess_MINE")
        assert clerk.sessions.get("sess_MINE").id == "sess_MINE"
    assert server.connections == 2


@pytest.mark.parametrize("operation", ["get", "revoke"])
async def test_an_in_process_transport_gets_the_same_check(operation: str) -> None:
    # No connection to drop here (httpx2.MockTransport): the answer is still refused.
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=session_json("b")))
    async with AsyncClerk(SECRET, transport=transport) as clerk:
        with pytest.raises(errors.SDKError, match="asked for session 'a'"):
            await getattr(clerk.sessions, operation)("a")
