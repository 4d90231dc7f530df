"""The wire is exactly the spec's: methods, paths, query strings, bodies and headers."""

from __future__ import annotations

import platform

import pytest

import clerk_sessions
from clerk_sessions import QueryParamStatus
from clerk_sessions.models import CreateSessionRequestBody, RefreshSessionRequestBody
from tests._engine import hx

from ._support import SECRET, Script, make_client, ok, session_json

pytestmark = pytest.mark.anyio

TOKEN = {"object": "token", "jwt": "a.b.c"}


async def test_every_request_carries_auth_accept_version_and_user_agent() -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script, api_version="2025-11-10")
    await clerk.sessions.get("sess_1")
    headers = script.requests[0].headers
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["accept"] == "application/json"
    assert headers["clerk-api-version"] == "2025-11-10"
    assert headers["user-agent"].startswith(f"clerk-sessions/{clerk_sessions.__version__} ")
    assert platform.python_version() in headers["user-agent"]


async def test_default_api_version_is_the_newest_spec() -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    await clerk.sessions.get("sess_1")
    assert script.requests[0].headers["clerk-api-version"] == "2026-05-12"


async def test_own_http_client_gets_the_same_headers_per_request() -> None:
    script = Script([ok(session_json())])
    async with hx.AsyncClient(transport=hx.MockTransport(script)) as http:
        clerk = clerk_sessions.AsyncClerk(SECRET, server_url="https://x.test/v1", http_client=http)
        await clerk.sessions.get("sess_1")
        await clerk.aclose()  # must not close a client we do not own
        assert not http.is_closed
    headers = script.requests[0].headers
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["clerk-api-version"] == "2026-05-12"


async def test_cookies_the_server_sets_are_neither_kept_nor_sent_back() -> None:
    # A CDN or proxy in front of the API may set cookies; the SDK's calls are stateless.
    cookie = {"set-cookie": "__cf_bm=abc; Path=/; Domain=api.test; Secure; HttpOnly"}
    script = Script([ok(session_json(), headers=cookie)])
    clerk, _ = make_client(script)
    await clerk.sessions.get("sess_1")
    await clerk.sessions.get("sess_1")
    assert "cookie" not in script.requests[1].headers
    assert len(clerk._transport.client.cookies) == 0
    with pytest.raises(TypeError, match="keeps no cookies"):
        clerk._transport.client.cookies = {"a": "b"}


async def test_a_users_http_client_keeps_its_own_cookie_jar() -> None:
    cookie = {"set-cookie": "pref=1; Path=/; Domain=x.test"}
    script = Script([ok(session_json(), headers=cookie)])
    async with hx.AsyncClient(transport=hx.MockTransport(script)) as http:
        clerk = clerk_sessions.AsyncClerk(SECRET, server_url="https://x.test/v1", http_client=http)
        await clerk.sessions.get("sess_1")
        await clerk.sessions.get("sess_1")
    assert script.requests[1].headers["cookie"] == "pref=1"


@pytest.mark.parametrize(
    ("kwargs", "query"),
    [
        ({}, ""),
        ({"user_id": "user_1"}, "user_id=user_1"),
        (
            {"client_id": "client_1", "user_id": "user_1", "status": QueryParamStatus.ACTIVE},
            "client_id=client_1&user_id=user_1&status=active",
        ),
        ({"status": "revoked"}, "status=revoked"),
        ({"paginated": False, "limit": 20, "offset": 10}, "paginated=false&limit=20&offset=10"),
        ({"paginated": True}, "paginated=true"),
        ({"user_id": "a b&c=d"}, "user_id=a+b%26c%3Dd"),
    ],
)
async def test_list_sends_only_given_query_parameters(
    kwargs: dict[str, object], query: str
) -> None:
    script = Script([ok([session_json()])])
    clerk, _ = make_client(script)
    result = await clerk.sessions.list(**kwargs)  # type: ignore[arg-type]
    request = script.requests[0]
    assert request.method == "GET"
    assert request.url.path == "/v1/sessions"
    assert request.url.query.decode() == query
    assert request.content == b""
    assert [s.id for s in result] == ["sess_1"]


async def test_list_page_asks_for_the_paginated_shape() -> None:
    script = Script([ok({"data": [session_json()], "total_count": 41})])
    clerk, _ = make_client(script)
    page = await clerk.sessions.list_page(user_id="user_1", limit=1)
    assert script.requests[0].url.query.decode() == "user_id=user_1&paginated=true&limit=1"
    assert page.total_count == 41
    assert [s.id for s in page.data] == ["sess_1"]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.create(request={"user_id": "user_1"}),
        lambda s: s.create(CreateSessionRequestBody(user_id="user_1")),
        lambda s: s.create(user_id="user_1"),
    ],
    ids=["seed-dict", "model", "keywords"],
)
async def test_create_posts_only_the_given_fields(call: object) -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    await call(clerk.sessions)  # type: ignore[operator]
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/sessions")
    assert request.headers["content-type"] == "application/json"
    assert script.body() == {"user_id": "user_1"}


async def test_create_sends_active_organization_when_given() -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    await clerk.sessions.create(user_id="user_1", active_organization_id="org_1")
    assert script.body() == {"user_id": "user_1", "active_organization_id": "org_1"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.create(), "needs user_id"),
        (lambda s: s.create(request={"usr_id": "x"}), "usr_id"),
        (lambda s: s.create(request={"user_id": 5}), "user_id"),
        (lambda s: s.create(request={"user_id": "u"}, user_id="u"), "not both"),
        (lambda s: s.create(request=["user_id"]), "dict"),
    ],
)
async def test_create_rejects_bad_input_before_any_io(call: object, message: str) -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    with pytest.raises(TypeError, match=message):
        await call(clerk.sessions)  # type: ignore[operator]
    assert script.requests == []


async def test_get_and_revoke_use_the_spec_paths() -> None:
    script = Script([ok(session_json()), ok(session_json(status="revoked"))])
    clerk, _ = make_client(script)
    await clerk.sessions.get(session_id="sess_1")
    revoked = await clerk.sessions.revoke("sess_1")
    assert [(r.method, r.url.path) for r in script.requests] == [
        ("GET", "/v1/sessions/sess_1"),
        ("POST", "/v1/sessions/sess_1/revoke"),
    ]
    assert script.requests[1].content == b""
    assert revoked.status == "revoked"


async def test_create_token_without_lifetime_sends_no_body() -> None:
    script = Script([ok(TOKEN)])
    clerk, _ = make_client(script)
    token = await clerk.sessions.create_token("sess_1")
    request = script.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/sessions/sess_1/tokens")
    assert request.content == b""
    assert token.jwt == "a.b.c"


async def test_create_token_rounds_the_seeds_float_lifetime_to_whole_seconds() -> None:
    script = Script([ok(TOKEN)])
    clerk, _ = make_client(script)
    await clerk.sessions.create_token(session_id="sess_1", expires_in_seconds=6005.84)
    assert script.body() == {"expires_in_seconds": 6006}


async def test_create_token_from_template_encodes_both_path_parameters() -> None:
    script = Script([ok(TOKEN)])
    clerk, _ = make_client(script)
    await clerk.sessions.create_token_from_template(
        session_id="ses_123abcd4567", template_name="custom/hasura", expires_in_seconds=60
    )
    request = script.requests[0]
    assert request.url.raw_path == b"/v1/sessions/ses_123abcd4567/tokens/custom%2Fhasura"
    assert script.body() == {"expires_in_seconds": 60}


async def test_refresh_accepts_the_request_model_and_sends_only_given_fields() -> None:
    script = Script([ok({"object": "cookies", "cookies": ["__session=x; Path=/"]})])
    clerk, _ = make_client(script)
    body = RefreshSessionRequestBody(
        expired_token="old", refresh_token="ref", request_origin="https://app.test", format="cookie"
    )
    result = await clerk.sessions.refresh("sess_1", body)
    assert script.requests[0].url.path == "/v1/sessions/sess_1/refresh"
    assert script.body() == {
        "expired_token": "old",
        "refresh_token": "ref",
        "request_origin": "https://app.test",
        "format": "cookie",
    }
    assert result.object == "cookies"
    assert result.cookies == ("__session=x; Path=/",)


async def test_refresh_accepts_keywords_like_the_official_sdk() -> None:
    script = Script([ok({"object": "token", "jwt": "new.jwt.value"})])
    clerk, _ = make_client(script)
    result = await clerk.sessions.refresh(
        session_id="sess_1", expired_token="old", refresh_token="ref", request_origin="o"
    )
    assert script.body() == {"expired_token": "old", "refresh_token": "ref", "request_origin": "o"}
    assert result.jwt == "new.jwt.value"


async def test_refresh_without_required_fields_fails_before_any_io() -> None:
    script = Script([ok(TOKEN)])
    clerk, _ = make_client(script)
    with pytest.raises(TypeError, match="refresh_token"):
        await clerk.sessions.refresh("sess_1", {"expired_token": "old", "request_origin": "o"})
    assert script.requests == []


@pytest.mark.parametrize(
    ("session_id", "raw_path"),
    [
        ("sess_1", b"/v1/sessions/sess_1"),
        ("a/b", b"/v1/sessions/a%2Fb"),
        ("../users", b"/v1/sessions/..%2Fusers"),
        ("x?admin=1", b"/v1/sessions/x%3Fadmin%3D1"),
        ("x#frag", b"/v1/sessions/x%23frag"),
        ("%2e%2e", b"/v1/sessions/%252e%252e"),
        ("sp ace", b"/v1/sessions/sp%20ace"),
        ("ünï", b"/v1/sessions/%C3%BCn%C3%AF"),
        ("a\r\nb", b"/v1/sessions/a%0D%0Ab"),
    ],
)
async def test_path_parameters_are_one_percent_encoded_segment(
    session_id: str, raw_path: bytes
) -> None:
    script = Script([ok(session_json(session_id))])
    clerk, _ = make_client(script)
    await clerk.sessions.get(session_id)
    assert script.requests[0].url.raw_path == raw_path


@pytest.mark.parametrize("bad", ["", ".", ".."])
async def test_ids_that_would_change_the_path_fail_before_any_io(bad: str) -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    for call in (
        clerk.sessions.get(bad),
        clerk.sessions.revoke(bad),
        clerk.sessions.create_token(bad),
        clerk.sessions.create_token_from_template("sess_1", bad),
    ):
        with pytest.raises(ValueError, match="non-empty id"):
            await call
    assert script.requests == []


async def test_non_string_id_is_a_type_error() -> None:
    script = Script([ok(session_json())])
    clerk, _ = make_client(script)
    with pytest.raises(TypeError, match="session_id must be a string"):
        await clerk.sessions.get(123)  # type: ignore[arg-type]
    assert script.requests == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"limit": "10"}, TypeError),
        ({"limit": True}, TypeError),
        ({"limit": 0}, ValueError),
        ({"offset": -1}, ValueError),
        ({"paginated": "yes"}, TypeError),
        ({"status": 3}, TypeError),
        ({"user_id": 5}, TypeError),
    ],
)
async def test_bad_list_parameters_fail_before_any_io(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    script = Script([ok([])])
    clerk, _ = make_client(script)
    with pytest.raises(error):
        await clerk.sessions.list(**kwargs)  # type: ignore[arg-type]
    assert script.requests == []


async def test_positional_first_parameters_work_like_keywords() -> None:
    script = Script([ok(TOKEN)])
    clerk, _ = make_client(script)
    await clerk.sessions.create_token_from_template("sess_1", "tmpl")
    assert script.requests[0].url.path == "/v1/sessions/sess_1/tokens/tmpl"
