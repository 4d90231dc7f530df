"""Malformed bodies are typed errors: ResponseValidationError for a 2XX, SDKError or
ClerkErrors for an error status; never RecursionError or another parser's exception.
revoke_many records any per-id exception as that id's failure and goes on."""

from __future__ import annotations

import json

import httpx2
import pytest

from clerk_sessions import AsyncClerk, errors
from tests.core._support import session_json

from ._hostile import SECRET, Conn, HostileServer, send_json

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

DEEP = b"[" * 100_000 + b"]" * 100_000
DIGITS = b'{"object": "session", "id": "sess_1", "last_active_at": ' + b"7" * 100_000 + b"}"
WRONG_TYPES = json.dumps(session_json("sess_1", status=["active"], created_at="yesterday"))


def answering(body: bytes | str, status: int = 200) -> object:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            if not send_json(conn, body.encode() if isinstance(body, str) else body, status):
                return

    return handler


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (DEEP, "invalid JSON"),
        (DIGITS, "invalid JSON"),
        (WRONG_TYPES, "@ $.created_at"),
    ],
    ids=["nested 100,000 deep", "100,000 digits", "wrong types"],
)
async def test_a_malformed_answer_is_a_response_validation_error(
    server: HostileServer, body: bytes | str, problem: str
) -> None:
    server.handler = answering(body)  # type: ignore[assignment]
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        with pytest.raises(errors.ResponseValidationError) as info:
            await clerk.sessions.get("sess_1")
    assert problem in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        DIGITS,
        b'{"errors": [{"code": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}",
        b'{"errors": "not a list"}',
    ],
    ids=["nested", "digits", "nested code", "wrong type"],
)
async def test_a_malformed_error_answer_is_an_sdkerror(server: HostileServer, body: bytes) -> None:
    server.handler = answering(body, 404)  # type: ignore[assignment]
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        with pytest.raises(errors.SDKError) as info:
            await clerk.sessions.get("sess_1")
    assert info.value.status_code == 404


async def test_error_fields_of_the_wrong_type_are_left_empty(server: HostileServer) -> None:
    nested = "[" * 400 + "]" * 400
    body = f'{{"errors": [{{"code": 7, "message": {nested}, "long_message": null}}]}}'
    server.handler = answering(body, 404)  # type: ignore[assignment]
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        with pytest.raises(errors.NotFoundError) as info:
            await clerk.sessions.get("sess_1")
    error = info.value.errors[0]
    assert (error.code, error.message, error.long_message) == ("7", "", "")


async def test_revoke_many_records_any_exception_per_id_and_goes_on() -> None:
    ids = [f"sess_{n}" for n in range(20)]

    def handler(request: httpx2.Request) -> httpx2.Response:
        session_id = request.url.path.split("/")[3]
        if session_id == "sess_3":
            return httpx2.Response(200, content=DEEP, headers={"content-type": "application/json"})
        if session_id == "sess_4":
            # Not an API outcome: a library's (or a bug's) own exception.
            raise RuntimeError("boom")
        return httpx2.Response(200, json=session_json(session_id, status="revoked"))

    async with AsyncClerk(
        SECRET, transport=httpx2.MockTransport(handler), retry_config=None
    ) as clerk:
        result = await clerk.sessions.revoke_many(ids, concurrency=4)
    assert set(result.failed) == {"sess_3", "sess_4"}
    assert isinstance(result.failed["sess_3"], errors.ResponseValidationError)
    assert isinstance(result.failed["sess_4"], RuntimeError)
    assert set(result.revoked) == set(ids) - {"sess_3", "sess_4"}


async def test_a_huge_error_message_is_clipped_in_the_exceptions_own_message(
    server: HostileServer,
) -> None:
    text = "x" * 1_000_000
    body = json.dumps({"errors": [{"code": "c", "message": text, "long_message": text}]})
    server.handler = answering(body, 422)  # type: ignore[assignment]
    async with AsyncClerk(SECRET, server_url=server.url) as clerk:
        with pytest.raises(errors.UnprocessableEntityError) as info:
            await clerk.sessions.get("sess_1")
    assert len(str(info.value)) < 600
    assert info.value.errors[0].long_message == text
