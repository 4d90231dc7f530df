"""``sessions.with_raw_response.<op>``: the answer as it arrived, on both clients."""

from __future__ import annotations

import json

import httpx2
import pytest

from clerk_sessions import AsyncClerk, Clerk, errors, models
from clerk_sessions.testing import FakeClerk

from ._ops import SINGLE_REQUEST_OPS, Recorder, Seeded, call_async, call_sync, seed

pytestmark = pytest.mark.anyio

SESSION_2 = {
    "object": "session",
    "id": "sess_2",
    "user_id": "user_1",
    "client_id": "client_1",
    "status": "active",
    "last_active_at": 1,
    "expire_at": 2,
    "abandon_at": 3,
    "updated_at": 4,
    "created_at": 5,
}


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk()


@pytest.fixture
def seeded(fake: FakeClerk) -> Seeded:
    return seed(fake)


def check_raw(raw: object, recorder: Recorder) -> models.RawResponse[object]:
    assert isinstance(raw, models.RawResponse)
    assert raw.status_code == 200
    assert isinstance(raw.headers, httpx2.Headers)
    assert raw.headers["content-type"] == "application/json"
    assert raw.clerk_trace_id is not None
    assert raw.clerk_trace_id == raw.headers["x-clerk-trace-id"]
    assert json.loads(raw.content) is not None
    assert len(recorder.requests) == 1  # one request, like the plain call
    return raw


@pytest.mark.parametrize("op", SINGLE_REQUEST_OPS)
async def test_every_single_request_operation_has_a_raw_form_on_async_clerk(
    fake: FakeClerk, seeded: Seeded, op: str
) -> None:
    recorder = Recorder(fake.transport())
    clerk = AsyncClerk(fake.secret_key, server_url="http://fake.test/v1", transport=recorder)
    raw = check_raw(await call_async(clerk.sessions.with_raw_response, op, seeded), recorder)
    # parse() gives exactly what the plain call gives for the same answer.
    plain_decoder_result = raw.parse()
    assert raw.parse() == plain_decoder_result
    if op in ("get", "revoke", "verify"):
        assert plain_decoder_result == await clerk.sessions.get(seeded.session_id)
    expected_type = {
        "list": list,
        "list_page": models.SessionPage,
        "create_token": models.SessionToken,
        "create_token_from_template": models.SessionToken,
        "refresh": models.SessionRefresh,
    }.get(op, models.Session)
    assert isinstance(plain_decoder_result, expected_type)


@pytest.mark.parametrize("op", SINGLE_REQUEST_OPS)
def test_every_single_request_operation_has_a_raw_form_on_clerk(
    fake: FakeClerk, seeded: Seeded, op: str
) -> None:
    recorder = Recorder(fake.transport())
    with Clerk(fake.secret_key, server_url="http://fake.test/v1", transport=recorder) as clerk:
        raw = check_raw(call_sync(clerk.sessions.with_raw_response, op, seeded), recorder)
        assert raw.parse() is not None


async def test_parse_equals_the_plain_call_for_the_same_session(
    fake: FakeClerk, seeded: Seeded
) -> None:
    clerk = fake.async_client()
    raw = await clerk.sessions.with_raw_response.get(seeded.session_id)
    assert raw.parse() == await clerk.sessions.get(seeded.session_id)


async def test_raw_form_raises_exactly_as_the_plain_call(fake: FakeClerk) -> None:
    clerk = fake.async_client(retry_config=None)
    with pytest.raises(errors.NotFoundError) as plain:
        await clerk.sessions.get("sess_missing")
    with pytest.raises(errors.NotFoundError) as raw:
        await clerk.sessions.with_raw_response.get("sess_missing")
    assert raw.value.status_code == plain.value.status_code == 404
    assert raw.value.errors == plain.value.errors


async def test_raw_form_takes_the_per_call_options(fake: FakeClerk, seeded: Seeded) -> None:
    recorder = Recorder(fake.transport())
    clerk = AsyncClerk(fake.secret_key, server_url="http://fake.test/v1", transport=recorder)
    with pytest.raises(ValueError, match="Authorization"):
        await clerk.sessions.with_raw_response.get(
            seeded.session_id, http_headers={"Authorization": "x"}
        )
    await clerk.sessions.with_raw_response.get(
        seeded.session_id, http_headers={"X-A": "1"}, timeout_ms=500
    )
    (request,) = recorder.requests
    assert request.headers["x-a"] == "1"
    assert request.extensions["timeout"]["read"] == 0.5


async def test_a_schema_breaking_answer_raises_as_the_plain_call_does() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": 1}, headers={"X-Clerk-Trace-Id": "tr_1"})

    clerk = AsyncClerk("sk_test_x", transport=httpx2.MockTransport(handler))
    with pytest.raises(errors.ResponseValidationError) as plain:
        await clerk.sessions.get("sess_1")
    with pytest.raises(errors.ResponseValidationError) as raw:
        await clerk.sessions.with_raw_response.get("sess_1")
    assert raw.value.errors == plain.value.errors


async def test_an_answer_for_another_session_raises_as_the_plain_call_does() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=SESSION_2)

    clerk = AsyncClerk("sk_test_x", transport=httpx2.MockTransport(handler), retry_config=None)
    for call in (clerk.sessions.revoke, clerk.sessions.with_raw_response.revoke):
        with pytest.raises(errors.SDKError, match="asked for session 'sess_1'"):
            await call("sess_1")


async def test_an_answer_without_a_trace_header_has_no_trace_id() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=[])

    clerk = AsyncClerk("sk_test_x", transport=httpx2.MockTransport(handler))
    raw = await clerk.sessions.with_raw_response.list(user_id="user_1")
    assert raw.clerk_trace_id is None
    assert raw.parse() == []


def test_the_raw_form_has_no_multi_request_operations() -> None:
    for name in ("iterate", "revoke_many", "revoke_all"):
        assert not hasattr(AsyncClerk("sk_test_x").sessions.with_raw_response, name)
        assert not hasattr(Clerk("sk_test_x").sessions.with_raw_response, name)


def test_raw_forms_are_exactly_the_single_request_operations() -> None:
    public = {
        name
        for name in vars(type(AsyncClerk("sk_test_x").sessions.with_raw_response))
        if not name.startswith("_")
    }
    assert public == set(SINGLE_REQUEST_OPS)
