"""The fake's HTTP behaviour, as Clerk's spec describes it (raw httpx, in-process)."""

from __future__ import annotations

from typing import Any

import httpx2
import jwt
import pytest

from clerk_sessions.testing import FakeClerk, ManualClock

from .conftest import OLD, raw_client

pytestmark = pytest.mark.anyio


def assert_clerk_error(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["clerk_trace_id"]
    error = body["errors"][0]
    assert error["code"] == code
    assert error["message"] and error["long_message"]
    return body


def decode(fake: FakeClerk, token: str, clock: ManualClock) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        fake.public_key_pem,
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    return claims


# --- authentication ---------------------------------------------------------------


async def test_missing_secret_key_is_401(fake: FakeClerk) -> None:
    async with httpx2.AsyncClient(transport=fake.transport(), base_url="http://x/v1") as client:
        assert_clerk_error(await client.get("/sessions"), 401, "authentication_invalid")


async def test_wrong_secret_key_is_401(fake: FakeClerk) -> None:
    async with raw_client(fake, key="sk_test_other") as client:
        assert_clerk_error(await client.get("/sessions"), 401, "authentication_invalid")


async def test_jwks_needs_the_secret_key_too(fake: FakeClerk) -> None:
    async with raw_client(fake, key="sk_test_other") as client:
        assert (await client.get("/jwks")).status_code == 401


# --- list -------------------------------------------------------------------------


async def test_list_is_a_bare_array_newest_first(
    fake: FakeClerk, http: httpx2.AsyncClient, clock: ManualClock
) -> None:
    older = fake.add_session(user_id="user_a")
    clock.advance(1)
    newer = fake.add_session(user_id="user_a")
    response = await http.get("/sessions", params={"user_id": "user_a"})
    assert response.status_code == 200
    assert [s["id"] for s in response.json()] == [newer["id"], older["id"]]


async def test_paginated_list_has_data_and_total_count(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    for _ in range(5):
        fake.add_session(user_id="user_a")
    response = await http.get(
        "/sessions", params={"user_id": "user_a", "paginated": "true", "limit": 2, "offset": 4}
    )
    body = response.json()
    assert body["total_count"] == 5
    assert [s["id"] for s in body["data"]] == [fake.sessions[4]["id"]]


async def test_list_limit_defaults_to_10(fake: FakeClerk, http: httpx2.AsyncClient) -> None:
    for _ in range(12):
        fake.add_session(user_id="user_a")
    assert len((await http.get("/sessions")).json()) == 10


async def test_list_filters_by_user_client_and_status(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    mine = fake.add_session(user_id="user_a")
    fake.add_session(user_id="user_a", status="revoked")
    fake.add_session(user_id="user_b")
    by_status = await http.get("/sessions", params={"user_id": "user_a", "status": "active"})
    by_client = await http.get("/sessions", params={"client_id": mine["client_id"]})
    assert [s["id"] for s in by_status.json()] == [mine["id"]]
    assert [s["id"] for s in by_client.json()] == [mine["id"]]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"status": "sleepy"}, "status"),
        ({"status": "pending"}, "status"),
        ({"paginated": "yes"}, "paginated"),
    ],
)
async def test_invalid_list_query_is_422(
    http: httpx2.AsyncClient, params: dict[str, str], param: str
) -> None:
    response = await http.get("/sessions", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["meta"]["param_name"] == param


async def test_list_accepts_limit_bounds(http: httpx2.AsyncClient) -> None:
    for limit in ("1", "500"):
        assert (await http.get("/sessions", params={"limit": limit})).status_code == 200


# --- create, get, revoke ----------------------------------------------------------


async def test_create_makes_an_active_session_for_a_user(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    user = fake.add_user()
    response = await http.post("/sessions", json={"user_id": user})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "session" and body["status"] == "active"
    assert fake.get_session(body["id"])["user_id"] == user
    assert fake.requests[-1].state_changed


async def test_create_sets_the_active_organization(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    user = fake.add_user()
    body = {"user_id": user, "active_organization_id": "org_1"}
    response = await http.post("/sessions", json=body)
    assert response.json()["last_active_organization_id"] == "org_1"


async def test_create_for_unknown_user_is_404(http: httpx2.AsyncClient) -> None:
    assert_clerk_error(
        await http.post("/sessions", json={"user_id": "user_nope"}), 404, "resource_not_found"
    )


async def test_create_without_user_id_is_422(http: httpx2.AsyncClient) -> None:
    body = assert_clerk_error(await http.post("/sessions", json={}), 422, "form_param_missing")
    assert body["errors"][0]["meta"] == {"param_name": "user_id"}


async def test_get_returns_the_session(fake: FakeClerk, http: httpx2.AsyncClient) -> None:
    session = fake.add_session()
    assert (await http.get(f"/sessions/{session['id']}")).json() == session


async def test_get_unknown_session_is_404(http: httpx2.AsyncClient) -> None:
    assert_clerk_error(await http.get("/sessions/sess_nope"), 404, "resource_not_found")


async def test_revoke_moves_active_to_revoked(
    fake: FakeClerk, http: httpx2.AsyncClient, clock: ManualClock
) -> None:
    session = fake.add_session()
    clock.advance(5)
    response = await http.post(f"/sessions/{session['id']}/revoke")
    assert response.json()["status"] == "revoked"
    assert response.json()["updated_at"] == session["updated_at"] + 5000
    assert fake.get_session(session["id"])["status"] == "revoked"


async def test_revoke_of_revoked_session_is_200_and_unchanged(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    session = fake.add_session(status="revoked")
    response = await http.post(f"/sessions/{session['id']}/revoke")
    assert response.status_code == 200
    assert response.json() == session
    assert not fake.requests[-1].state_changed


async def test_revoke_unknown_session_is_404(http: httpx2.AsyncClient) -> None:
    assert (await http.post("/sessions/sess_nope/revoke")).status_code == 404


# --- routing on the raw path ------------------------------------------------------


async def test_encoded_slash_stays_inside_the_id(fake: FakeClerk, http: httpx2.AsyncClient) -> None:
    fake.add_session(session_id="sess_a/revoke")
    response = await http.get("/sessions/sess_a%2Frevoke")
    assert response.status_code == 200
    assert response.json()["id"] == "sess_a/revoke"
    assert response.json()["status"] == "active"


async def test_encoded_dots_do_not_climb_the_path(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    session = fake.add_session()
    response = await http.post(f"/sessions/%2E%2E%2Fsessions%2F{session['id']}/revoke")
    assert response.status_code == 404
    assert fake.get_session(session["id"])["status"] == "active"


async def test_unknown_path_is_404(http: httpx2.AsyncClient) -> None:
    assert_clerk_error(await http.get("/users"), 404, "resource_not_found")


async def test_wrong_method_is_405_with_allow(http: httpx2.AsyncClient) -> None:
    response = await http.delete("/sessions")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


# --- verify -----------------------------------------------------------------------


async def test_verify_is_gone_in_new_versions(fake: FakeClerk, http: httpx2.AsyncClient) -> None:
    session = fake.add_session()
    assert_clerk_error(
        await http.post(f"/sessions/{session['id']}/verify"), 410, "endpoint_removed"
    )


async def test_verify_works_under_2025_03_12(fake: FakeClerk) -> None:
    session = fake.add_session()
    token = fake.mint_token(session["id"])
    async with raw_client(fake, version=OLD) as client:
        response = await client.post(f"/sessions/{session['id']}/verify", json={"token": token})
    assert response.status_code == 200
    assert response.json()["id"] == session["id"]


async def test_verify_rejects_a_token_of_another_session(fake: FakeClerk) -> None:
    session, other = fake.add_session(), fake.add_session()
    token = fake.mint_token(other["id"])
    async with raw_client(fake, version=OLD) as client:
        response = await client.post(f"/sessions/{session['id']}/verify", json={"token": token})
    assert_clerk_error(response, 400, "token_invalid")


# --- tokens -----------------------------------------------------------------------


async def test_create_token_returns_a_v2_session_token(
    fake: FakeClerk, http: httpx2.AsyncClient, clock: ManualClock
) -> None:
    session = fake.add_session(active_organization_id="org_1", org_slug="acme")
    response = await http.post(f"/sessions/{session['id']}/tokens")
    body = response.json()
    assert body["object"] == "token"
    assert jwt.get_unverified_header(body["jwt"]) == {
        "alg": "RS256",
        "kid": fake.kid,
        "typ": "JWT",
    }
    claims = decode(fake, body["jwt"], clock)
    now = int(clock())
    assert claims == {
        "azp": "http://localhost:3000",
        "exp": now + 60,
        "fva": [0, -1],
        "iat": now,
        "iss": "https://clerk.fake.test",
        "nbf": now - 10,
        "sid": session["id"],
        "sts": "active",
        "sub": session["user_id"],
        "v": 2,
        "o": {"id": "org_1", "rol": "admin", "slg": "acme"},
    }


async def test_create_token_honours_expires_in_seconds(
    fake: FakeClerk, http: httpx2.AsyncClient, clock: ManualClock
) -> None:
    session = fake.add_session()
    response = await http.post(
        f"/sessions/{session['id']}/tokens", json={"expires_in_seconds": 300}
    )
    claims = decode(fake, response.json()["jwt"], clock)
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.parametrize("value", [29, 315_360_001, "60", True, 1.5])
async def test_invalid_expires_in_seconds_is_422(
    fake: FakeClerk, http: httpx2.AsyncClient, value: object
) -> None:
    session = fake.add_session()
    response = await http.post(
        f"/sessions/{session['id']}/tokens", json={"expires_in_seconds": value}
    )
    assert response.status_code == 422


async def test_token_for_a_revoked_session_is_404(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    session = fake.add_session(status="revoked")
    assert (await http.post(f"/sessions/{session['id']}/tokens")).status_code == 404


async def test_token_for_a_pending_session_says_pending(
    fake: FakeClerk, http: httpx2.AsyncClient, clock: ManualClock
) -> None:
    session = fake.add_session(status="pending")
    response = await http.post(f"/sessions/{session['id']}/tokens")
    assert decode(fake, response.json()["jwt"], clock)["sts"] == "pending"


async def test_template_token_has_template_claims(
    fake: FakeClerk, http: httpx2.AsyncClient, clock: ManualClock
) -> None:
    session = fake.add_session()
    fake.add_template("hasura", claims={"role": "user", "sid": "{{session.id}}"}, lifetime=120)
    response = await http.post(f"/sessions/{session['id']}/tokens/hasura")
    claims = decode(fake, response.json()["jwt"], clock)
    assert claims["role"] == "user"
    assert claims["sid"] == session["id"]
    assert claims["sub"] == session["user_id"]
    assert claims["exp"] - claims["iat"] == 120
    assert {"azp", "iss", "jti", "nbf"} <= claims.keys()


async def test_unknown_template_is_404(fake: FakeClerk, http: httpx2.AsyncClient) -> None:
    session = fake.add_session()
    response = await http.post(f"/sessions/{session['id']}/tokens/nope")
    assert_clerk_error(response, 404, "resource_not_found")


async def test_template_name_is_routed_on_raw_segments(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    session = fake.add_session()
    fake.add_template("a/b")
    assert (await http.post(f"/sessions/{session['id']}/tokens/a%2Fb")).status_code == 200


async def test_jwks_publishes_the_signing_key(fake: FakeClerk, http: httpx2.AsyncClient) -> None:
    session = fake.add_session()
    token = fake.mint_token(session["id"])
    keys = (await http.get("/jwks")).json()["keys"]
    assert keys[0]["kid"] == fake.kid and keys[0]["alg"] == "RS256"
    public = jwt.PyJWK(keys[0]).key
    options = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    claims = jwt.decode(token, public, algorithms=["RS256"], options=options)
    assert claims["sid"] == session["id"]


async def test_rotated_key_is_published(fake: FakeClerk, http: httpx2.AsyncClient) -> None:
    old = fake.kid
    new = fake.rotate_signing_key()
    keys = (await http.get("/jwks")).json()["keys"]
    assert new != old
    assert [key["kid"] for key in keys] == [new]


# --- refresh ----------------------------------------------------------------------


def refresh_body(fake: FakeClerk, session_id: str, **extra: object) -> dict[str, object]:
    return {
        "expired_token": fake.mint_token(session_id),
        "refresh_token": fake.refresh_token(session_id),
        "request_origin": "http://localhost:3000",
        **extra,
    }


async def test_refresh_answers_a_token_by_default(
    fake: FakeClerk, http: httpx2.AsyncClient, clock: ManualClock
) -> None:
    session = fake.add_session()
    clock.advance(30)
    response = await http.post(
        f"/sessions/{session['id']}/refresh", json=refresh_body(fake, session["id"])
    )
    body = response.json()
    assert body["object"] == "token"
    assert decode(fake, body["jwt"], clock)["sid"] == session["id"]
    assert fake.get_session(session["id"])["last_active_at"] == session["last_active_at"] + 30_000


async def test_refresh_answers_cookies_when_asked(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    session = fake.add_session()
    response = await http.post(
        f"/sessions/{session['id']}/refresh",
        json=refresh_body(fake, session["id"], format="cookie"),
    )
    body = response.json()
    assert body["object"] == "cookies"
    assert body["cookies"][0].startswith("__session=ey")


async def test_refresh_with_a_wrong_refresh_token_is_401(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    session = fake.add_session()
    body = refresh_body(fake, session["id"], refresh_token="rt_wrong")
    response = await http.post(f"/sessions/{session['id']}/refresh", json=body)
    assert response.status_code == 401


async def test_refresh_of_a_revoked_session_is_401(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    session = fake.add_session()
    body = refresh_body(fake, session["id"])
    fake.set_session_status(session["id"], "revoked")
    assert (await http.post(f"/sessions/{session['id']}/refresh", json=body)).status_code == 401


async def test_refresh_without_required_fields_is_400(
    fake: FakeClerk, http: httpx2.AsyncClient
) -> None:
    session = fake.add_session()
    response = await http.post(f"/sessions/{session['id']}/refresh", json={"expired_token": "x"})
    assert_clerk_error(response, 400, "form_param_missing")
