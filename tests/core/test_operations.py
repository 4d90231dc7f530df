"""Operations beyond the plain request: verify (deprecated) and iterate."""

from __future__ import annotations

import warnings

import pytest

from clerk_sessions import errors
from tests._engine import hx

from ._support import Script, clerk_error_json, make_client, ok, session_json

pytestmark = pytest.mark.anyio


async def test_verify_warns_and_is_sent_with_the_last_api_version_that_has_it() -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    with pytest.warns(DeprecationWarning, match="verify_token"):
        session = await clerk.sessions.verify(session_id="sess_1", token="a.b.c")
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/sessions/sess_1/verify")
    assert request.headers["clerk-api-version"] == "2025-03-12"
    assert script.body() == {"token": "a.b.c"}
    assert session.id == "sess_1"


async def test_verify_without_token_sends_no_body() -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    with pytest.warns(DeprecationWarning):
        await clerk.sessions.verify("sess_1")
    assert script.requests[0].content == b""


async def test_verify_on_an_instance_without_the_endpoint_points_to_verify_token() -> None:
    gone = ok(clerk_error_json("endpoint_deprecated", "This endpoint is deprecated"), status=410)
    script = Script([gone])
    clerk, _ = make_client(script)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(errors.GoneError) as info:
            await clerk.sessions.verify("sess_1")
    assert "verify_token" in str(info.value)
    assert info.value.status_code == 410
    assert info.value.clerk_trace_id == "trace_abc"


async def test_other_requests_keep_the_client_api_version_after_verify() -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        await clerk.sessions.verify("sess_1")
    await clerk.sessions.get("sess_1")
    assert script.requests[1].headers["clerk-api-version"] == "2026-05-12"


def paged_server(total: int) -> Script:
    def answer(request: hx.Request) -> hx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        ids = [f"sess_{i}" for i in range(offset, min(offset + limit, total))]
        return ok({"data": [session_json(i) for i in ids], "total_count": total})

    return Script([answer])


async def test_iterate_walks_every_page() -> None:
    script = paged_server(7)
    clerk, _ = make_client(script)
    ids = [s.id async for s in clerk.sessions.iterate(user_id="user_1", page_size=3)]
    assert ids == [f"sess_{i}" for i in range(7)]
    assert [r.url.params["offset"] for r in script.requests] == ["0", "3", "6"]
    assert all(r.url.params["paginated"] == "true" for r in script.requests)


async def test_iterate_stops_without_an_extra_request_on_an_exact_last_page() -> None:
    script = paged_server(6)
    clerk, _ = make_client(script)
    ids = [s.id async for s in clerk.sessions.iterate(user_id="user_1", page_size=3)]
    assert len(ids) == 6
    assert len(script.requests) == 2  # total_count says there is nothing more


async def test_iterate_works_with_bare_array_answers() -> None:
    def answer(request: hx.Request) -> hx.Response:
        offset = int(request.url.params["offset"])
        return ok([session_json(f"sess_{i}") for i in range(offset, min(offset + 2, 5))])

    clerk, _ = make_client(Script([answer]))
    ids = [s.id async for s in clerk.sessions.iterate(client_id="client_1", page_size=2)]
    assert ids == [f"sess_{i}" for i in range(5)]


async def test_iterate_fetches_nothing_until_asked_and_stops_early_cleanly() -> None:
    script = paged_server(100)
    clerk, _ = make_client(script)
    iterator = clerk.sessions.iterate(user_id="user_1", page_size=10)
    assert script.requests == []
    async for session in iterator:
        if session.id == "sess_2":
            break
    assert len(script.requests) == 1
    await iterator.aclose()
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()
    assert len(script.requests) == 1


@pytest.mark.parametrize("size", [0, 501, "10", None])
def test_iterate_rejects_a_bad_page_size_at_once(size: object) -> None:
    clerk, _ = make_client(Script([ok([])]))
    with pytest.raises((TypeError, ValueError)):
        clerk.sessions.iterate(user_id="u", page_size=size)  # type: ignore[arg-type]


async def test_iterate_propagates_errors_typed() -> None:
    clerk, _ = make_client(Script([ok(clerk_error_json("x", "bad"), status=400)]))
    with pytest.raises(errors.BadRequestError):
        async for _ in clerk.sessions.iterate(user_id="u"):
            pass
