"""clerk_sessions.starlette: ClerkAuthBackend under Starlette's AuthenticationMiddleware,
in Starlette's TestClient on asyncio and trio, the AsyncClerk talking to the fake through
its in-process transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError, requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from clerk_sessions import AsyncClerk
from clerk_sessions.fastapi import clerk_lifespan
from clerk_sessions.models import RequestState, SessionClaims
from clerk_sessions.starlette import (
    ClerkAuthBackend,
    ClerkAuthenticationError,
    ClerkUser,
    on_auth_error,
)
from clerk_sessions.testing import FakeClerk

from ._support import bearer, expired_token

BACKENDS = ["asyncio", "trio"]


def client_kwargs(fake: FakeClerk, **extra: Any) -> dict[str, Any]:
    return {
        "bearer_auth": fake.secret_key,
        "server_url": "http://fake.clerk.test/v1",
        "transport": fake.transport(),
        **extra,
    }


async def whoami(request: Request) -> Response:
    user = request.user
    state: RequestState | None = getattr(request.state, "clerk_auth", None)
    return JSONResponse(
        {
            "authenticated": user.is_authenticated,
            "user": type(user).__name__,
            "identity": user.identity if isinstance(user, ClerkUser) else None,
            "display_name": user.display_name,
            "session_id": user.claims.session_id if isinstance(user, ClerkUser) else None,
            "scopes": request.auth.scopes,
            "reason": None if state is None else state.reason,
        }
    )


@requires("authenticated", status_code=401)
async def protected(request: Request) -> Response:
    return JSONResponse({"user_id": request.user.identity})


@requires("authenticated")
async def protected_default(request: Request) -> Response:
    return JSONResponse({"user_id": request.user.identity})


@requires("authenticated")
async def ws_whoami(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user_id": websocket.user.identity})
    await websocket.close()


ROUTES = [
    Route("/whoami", whoami),
    Route("/protected", protected),
    Route("/protected-default", protected_default),
    WebSocketRoute("/ws", ws_whoami),
]


def make_app(
    fake: FakeClerk,
    backend: ClerkAuthBackend | None = None,
    *,
    on_error: Callable[[HTTPConnection, AuthenticationError], Response] | None = on_auth_error,
    **extra: Any,
) -> Starlette:
    return Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=backend or ClerkAuthBackend(),
                on_error=on_error,
            )
        ],
        lifespan=clerk_lifespan(**client_kwargs(fake, **extra)),
    )


@pytest.fixture(params=BACKENDS)
def async_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def session(fake: FakeClerk) -> dict[str, Any]:
    return fake.add_session(user_id="user_alice")


# ---------------------------------------------------------------- signed in


def test_a_signed_in_caller_is_a_clerk_user_with_the_authenticated_scope(
    fake: FakeClerk, session: dict[str, Any], async_backend: str
) -> None:
    with TestClient(make_app(fake), backend=async_backend) as client:
        answer = client.get("/whoami", headers=bearer(fake.mint_token(session["id"])))
    assert answer.json() == {
        "authenticated": True,
        "user": "ClerkUser",
        "identity": "user_alice",
        "display_name": "user_alice",
        "session_id": session["id"],
        "scopes": ["authenticated"],
        "reason": None,
    }


def test_requires_authenticated_lets_a_signed_in_caller_through(
    fake: FakeClerk, session: dict[str, Any], async_backend: str
) -> None:
    with TestClient(make_app(fake), backend=async_backend) as client:
        answer = client.get("/protected", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 200
    assert answer.json() == {"user_id": "user_alice"}


def test_the_session_cookie_is_read_too(fake: FakeClerk, session: dict[str, Any]) -> None:
    with TestClient(make_app(fake)) as client:
        client.cookies.set("__session", fake.mint_token(session["id"]))
        assert client.get("/protected").json() == {"user_id": "user_alice"}


def test_a_websocket_gets_the_user_too(fake: FakeClerk, session: dict[str, Any]) -> None:
    token = fake.mint_token(session["id"])
    with (
        TestClient(make_app(fake)) as client,
        client.websocket_connect("/ws", headers=bearer(token)) as websocket,
    ):
        assert websocket.receive_json() == {"user_id": "user_alice"}


def test_the_clerk_user_repr_names_the_user_only(fake: FakeClerk, session: dict[str, Any]) -> None:
    async def verify() -> SessionClaims:
        async with AsyncClerk(**client_kwargs(fake)) as clerk:
            return await clerk.verify_token(fake.mint_token(session["id"]))

    assert repr(ClerkUser(anyio.run(verify))) == "ClerkUser(user_id='user_alice')"


# ---------------------------------------------------------------- signed out


def test_no_token_is_an_unauthenticated_user_without_scopes(
    fake: FakeClerk, async_backend: str
) -> None:
    with TestClient(make_app(fake), backend=async_backend) as client:
        answer = client.get("/whoami")
    assert answer.status_code == 200
    assert answer.json() == {
        "authenticated": False,
        "user": "UnauthenticatedUser",
        "identity": None,
        "display_name": "",
        "scopes": [],
        "session_id": None,
        "reason": "missing_token",
    }


def test_no_token_on_a_protected_endpoint_is_refused_by_requires(fake: FakeClerk) -> None:
    with TestClient(make_app(fake)) as client:
        assert client.get("/protected").status_code == 401
        # Starlette's own default for @requires is 403.
        assert client.get("/protected-default").status_code == 403


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(lambda fake, sid: expired_token(fake, sid), "token_expired", id="expired"),
        pytest.param(lambda fake, sid: "not-a-jwt", "token_malformed", id="malformed"),
        pytest.param(
            lambda fake, sid: fake.mint_token(sid)[:-4] + "AAAA", "invalid_signature", id="forged"
        ),
    ],
)
def test_a_bad_token_is_a_401_from_on_auth_error_even_on_open_endpoints(
    fake: FakeClerk, session: dict[str, Any], token: Any, reason: str, async_backend: str
) -> None:
    with TestClient(make_app(fake), backend=async_backend) as client:
        answer = client.get("/whoami", headers=bearer(token(fake, session["id"])))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        f'Bearer error="invalid_token", error_description="{reason}"'
    )
    assert answer.json() == {"detail": reason}


def test_authorized_parties_are_enforced(fake: FakeClerk, session: dict[str, Any]) -> None:
    token = fake.mint_token(session["id"])  # azp: http://localhost:3000
    ours = make_app(fake, ClerkAuthBackend(["http://localhost:3000"]))
    theirs = make_app(fake, ClerkAuthBackend(authorized_parties=["https://app.example"]))
    with TestClient(ours) as client:
        assert client.get("/protected", headers=bearer(token)).status_code == 200
    with TestClient(theirs) as client:
        answer = client.get("/protected", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json() == {"detail": "invalid_authorized_party"}


def test_a_pending_session_is_refused_unless_accepted(fake: FakeClerk) -> None:
    token = fake.mint_token(fake.add_session(user_id="user_bob", status="pending")["id"])
    with TestClient(make_app(fake)) as client:
        assert client.get("/protected", headers=bearer(token)).status_code == 401
    with TestClient(make_app(fake, ClerkAuthBackend(accept_pending=True))) as client:
        assert client.get("/protected", headers=bearer(token)).json() == {"user_id": "user_bob"}


def test_an_unreachable_jwks_is_a_503_not_a_401(fake: FakeClerk, session: dict[str, Any]) -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    app = make_app(fake, transport=httpx2.MockTransport(down), retry_config=None)
    with TestClient(app) as client:
        answer = client.get("/whoami", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert "WWW-Authenticate" not in answer.headers


def test_without_on_auth_error_starlette_answers_400_never_500(
    fake: FakeClerk, session: dict[str, Any]
) -> None:
    # Why on_error=on_auth_error is in every example: Starlette's default is a 400.
    with TestClient(make_app(fake, on_error=None)) as client:
        answer = client.get("/whoami", headers=bearer(expired_token(fake, session["id"])))
    assert answer.status_code == 400
    assert answer.text == "token_expired"


def test_on_auth_error_answers_another_backends_error_with_a_401() -> None:
    response = on_auth_error(
        HTTPConnection({"type": "http", "headers": []}), AuthenticationError("bad api key")
    )
    assert response.status_code == 401
    assert response.body == b'{"detail":"bad api key"}'


def test_the_error_carries_the_reason() -> None:
    error = ClerkAuthenticationError("token_expired")
    assert isinstance(error, AuthenticationError)
    assert error.reason == str(error) == "token_expired"


# ---------------------------------------------------------------- the client


def test_a_given_client_needs_no_lifespan(fake: FakeClerk, session: dict[str, Any]) -> None:
    clerk = AsyncClerk(**client_kwargs(fake))
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=ClerkAuthBackend(clerk=clerk),
                on_error=on_auth_error,
            )
        ],
    )
    with TestClient(app) as client:
        answer = client.get("/protected", headers=bearer(fake.mint_token(session["id"])))
    assert answer.json() == {"user_id": "user_alice"}


def test_without_the_lifespan_or_a_client_the_error_says_how_to_fix_it(fake: FakeClerk) -> None:
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(AuthenticationMiddleware, backend=ClerkAuthBackend())],
    )
    with TestClient(app) as client, pytest.raises(RuntimeError, match="clerk_lifespan"):
        client.get("/whoami")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"authorized_parties": "https://a.example"}, "not a str", id="parties str"),
        pytest.param({"clerk": "sk_test_..."}, "must be an AsyncClerk", id="clerk not a client"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ClerkAuthBackend(**kwargs)


def test_the_repr_shows_the_parties_only() -> None:
    backend = ClerkAuthBackend(["https://b.example", "https://a.example"], jwt_key="PEM")
    assert repr(backend) == (
        "ClerkAuthBackend(authorized_parties=['https://a.example', 'https://b.example'])"
    )
