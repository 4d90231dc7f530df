"""extract_token over every supported request kind, and authenticate's request states."""

from __future__ import annotations

from typing import Any

import django
import httpx2
import pytest
from django.conf import settings
from django.test import RequestFactory
from starlette.requests import Request as StarletteRequest

from clerk_sessions._request_token import extract_token
from clerk_sessions._verification import TokenVerifier

from .conftest import FROZEN_NOW, Clock, mint, payload

if not settings.configured:
    settings.configure(DEBUG=False, ALLOWED_HOSTS=["testserver"], USE_TZ=True)
    django.setup()

TOKEN = "header.payload.signature"


def starlette_request(headers: dict[str, str]) -> StarletteRequest:
    return StarletteRequest(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
    )


def django_request(headers: dict[str, str]) -> Any:
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    return RequestFactory().get("/", **meta)


def httpx_request(headers: dict[str, str]) -> httpx2.Request:
    return httpx2.Request("GET", "https://api.example/", headers=headers)


def mapping(headers: dict[str, str]) -> dict[str, str]:
    return dict(headers)


REQUEST_KINDS = [
    pytest.param(starlette_request, id="starlette"),
    pytest.param(django_request, id="django"),
    pytest.param(httpx_request, id="httpx"),
    pytest.param(mapping, id="mapping"),
]


@pytest.mark.parametrize("make", REQUEST_KINDS)
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, TOKEN, id="bearer"),
        pytest.param({"authorization": f"bearer {TOKEN}"}, TOKEN, id="lowercase"),
        pytest.param({"AUTHORIZATION": f"BEARER  {TOKEN} "}, TOKEN, id="uppercase, spaces"),
        pytest.param({"Cookie": f"__session={TOKEN}"}, TOKEN, id="cookie"),
        pytest.param(
            {"Cookie": f"theme=dark; __session_abc=other; __session={TOKEN}; x=1"},
            TOKEN,
            id="cookie among others",
        ),
        pytest.param(
            {"Authorization": f"Bearer {TOKEN}", "Cookie": "__session=from-cookie"},
            TOKEN,
            id="header wins over cookie",
        ),
        pytest.param(
            {"Authorization": "Basic dXNlcjpwYXNz", "Cookie": f"__session={TOKEN}"},
            TOKEN,
            id="other scheme falls back to cookie",
        ),
        pytest.param({"Authorization": "Bearer "}, None, id="empty bearer"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, None, id="basic"),
        pytest.param({"Cookie": "__session_abc=other; session=x"}, None, id="other cookies"),
        pytest.param({"Cookie": "__session="}, None, id="empty cookie"),
        pytest.param({}, None, id="nothing"),
    ],
)
def test_extract_token(make: Any, headers: dict[str, str], expected: str | None) -> None:
    assert extract_token(make(headers)) == expected


def test_django_authorization_set_in_meta_after_headers_were_read() -> None:
    # request.headers is computed once from META; middleware that sets the header in
    # META afterwards is only visible there.
    request = django_request({})
    assert extract_token(request) is None
    request.META["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    assert extract_token(request) == TOKEN


def test_mapping_header_names_are_case_insensitive() -> None:
    assert extract_token({"aUtHoRiZaTiOn": f"Bearer {TOKEN}"}) == TOKEN
    assert extract_token({"COOKIE": f"__session={TOKEN}"}) == TOKEN


def test_quoted_cookie_value_is_unquoted() -> None:
    assert extract_token({"cookie": f'__session="{TOKEN}"'}) == TOKEN


def test_unsupported_request_kind_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="headers"):
        extract_token(42)


# --- authenticate -------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("make", REQUEST_KINDS)
async def test_valid_token_is_signed_in(verifier: TokenVerifier, make: Any) -> None:
    token = mint()
    state = await verifier.authenticate(make({"Authorization": f"Bearer {token}"}))
    assert state.is_signed_in
    assert state.reason is None
    assert state.token == token
    assert state.claims is not None
    assert state.claims.user_id == payload()["sub"]


@pytest.mark.anyio
async def test_request_without_token_is_signed_out(verifier: TokenVerifier) -> None:
    state = await verifier.authenticate({"accept": "text/html"})
    assert (state.is_signed_in, state.reason, state.token, state.claims) == (
        False,
        "missing_token",
        None,
        None,
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(mint(payload(exp=FROZEN_NOW - 60)), "token_expired", id="expired"),
        pytest.param("not-a-jwt", "token_malformed", id="malformed"),
        pytest.param(mint(kid="forged"), "unknown_kid", id="unknown kid"),
    ],
)
async def test_failed_verification_is_signed_out_with_the_reason(
    verifier: TokenVerifier, token: str, reason: str
) -> None:
    state = await verifier.authenticate({"Cookie": f"__session={token}"})
    assert (state.is_signed_in, state.reason, state.token, state.claims) == (
        False,
        reason,
        token,
        None,
    )


@pytest.mark.anyio
async def test_foreign_azp_is_signed_out(verifier: TokenVerifier) -> None:
    token = mint(payload(azp="https://evil.example"))
    state = await verifier.authenticate(
        {"Authorization": f"Bearer {token}"}, authorized_parties=["https://app.example"]
    )
    assert state.reason == "invalid_authorized_party"


@pytest.mark.anyio
async def test_pending_session_is_signed_out_but_keeps_its_claims(
    verifier: TokenVerifier,
) -> None:
    state = await verifier.authenticate({"Authorization": f"Bearer {mint(payload(sts='pending'))}"})
    assert not state.is_signed_in
    assert state.reason == "session_pending"
    assert state.claims is not None
    assert state.claims.session_status == "pending"


@pytest.mark.anyio
async def test_pending_session_is_signed_in_when_accepted(verifier: TokenVerifier) -> None:
    token = mint(payload(sts="pending"))
    state = await verifier.authenticate({"Authorization": f"Bearer {token}"}, accept_pending=True)
    assert state.is_signed_in
    assert state.reason is None


@pytest.mark.anyio
async def test_authenticate_passes_options_through(verifier: TokenVerifier, now: Clock) -> None:
    token = mint(payload(exp=FROZEN_NOW))
    now.t = FROZEN_NOW + 30
    request = {"Authorization": f"Bearer {token}"}
    assert (await verifier.authenticate(request)).reason == "token_expired"
    assert (await verifier.authenticate(request, leeway_s=60)).is_signed_in
