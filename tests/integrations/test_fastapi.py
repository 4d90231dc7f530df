"""clerk_sessions.fastapi in process: lifespan, dependencies and their HTTP answers.

The applications run in Starlette's TestClient (asyncio) and their AsyncClerk talks to
the fake through its in-process transport.
"""

# No `from __future__ import annotations`: FastAPI must resolve the endpoints'
# annotations, some of which name local variables.
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import httpx2
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clerk_sessions import AsyncClerk
from clerk_sessions.errors import ClerkSessionsError
from clerk_sessions.fastapi import (
    ClerkAuth,
    OptionalClerkAuth,
    clerk_lifespan,
    get_clerk,
    optional_session,
    require_session,
)
from clerk_sessions.models import RequestState, SessionClaims
from clerk_sessions.testing import FakeClerk

from ._support import bearer, expired_token


def client_kwargs(fake: FakeClerk, **extra: Any) -> dict[str, Any]:
    return {
        "bearer_auth": fake.secret_key,
        "server_url": "http://fake.clerk.test/v1",
        "transport": fake.transport(),
        **extra,
    }


def claims_app(fake: FakeClerk, auth: Any = require_session, **extra: Any) -> FastAPI:
    """An app whose ``/claims`` answers the dependency's result."""
    app = FastAPI(lifespan=clerk_lifespan(**client_kwargs(fake, **extra)))

    @app.get("/claims")
    async def claims(claims: Annotated[SessionClaims | None, Depends(auth)]) -> dict[str, Any]:
        if claims is None:
            return {"signed_in": False}
        return {"signed_in": True, "user_id": claims.user_id, "session_id": claims.session_id}

    return app


@pytest.fixture
def session(fake: FakeClerk) -> dict[str, Any]:
    return fake.add_session(user_id="user_alice")


@contextlib.contextmanager
def serving(app: Starlette) -> Iterator[TestClient]:
    # The with block runs the lifespan, which is what opens the AsyncClerk.
    with TestClient(app) as client:
        yield client


# ---------------------------------------------------------------- the lifespan


def test_lifespan_puts_an_open_client_on_app_state_and_closes_it(fake: FakeClerk) -> None:
    app = FastAPI(lifespan=clerk_lifespan(**client_kwargs(fake)))
    seen: list[AsyncClerk] = []

    @app.get("/")
    async def index(clerk: Annotated[AsyncClerk, Depends(get_clerk)]) -> dict[str, int]:
        seen.append(clerk)
        return {"sessions": len(await clerk.sessions.list())}

    with serving(app) as client:
        assert client.get("/").json() == {"sessions": 0}
        assert client.get("/").status_code == 200
        assert app.state.clerk is seen[0] is seen[1]
    assert not hasattr(app.state, "clerk")


def test_lifespan_runs_the_users_lifespan_inside_and_passes_its_state(fake: FakeClerk) -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def mine(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # The client is usable while the user's lifespan starts and ends.
        events.append(f"start, {len(await app.state.clerk.sessions.list())} sessions")
        yield {"greeting": "hello"}
        events.append(f"stop, {len(await app.state.clerk.sessions.list())} sessions")

    app = FastAPI(lifespan=clerk_lifespan(mine, **client_kwargs(fake)))

    @app.get("/")
    async def index(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    with serving(app) as client:
        fake.add_session()
        assert client.get("/").json() == {"greeting": "hello"}
    assert events == ["start, 0 sessions", "stop, 1 sessions"]


def test_lifespan_reads_the_key_from_the_environment_at_startup(
    fake: FakeClerk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLERK_SECRET_KEY", raising=False)
    app = FastAPI(lifespan=clerk_lifespan(transport=fake.transport()))  # import-time: fine
    with pytest.raises(ClerkSessionsError, match="CLERK_SECRET_KEY"), serving(app):
        pass

    monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
    monkeypatch.setenv("CLERK_API_URL", "http://fake.clerk.test/v1")
    with serving(app) as client:
        assert client.app_state == {}
        assert app.state.clerk.server_url == "http://fake.clerk.test/v1"


def test_get_clerk_without_the_lifespan_says_how_to_fix_it() -> None:
    app = FastAPI()

    @app.get("/")
    async def index(clerk: Annotated[AsyncClerk, Depends(get_clerk)]) -> None:
        raise AssertionError("unreachable")

    with serving(app) as client, pytest.raises(RuntimeError, match="clerk_lifespan"):
        client.get("/")


# ---------------------------------------------------------------- ClerkAuth


def test_a_bearer_token_of_an_active_session_gets_its_claims(
    fake: FakeClerk, session: dict[str, Any]
) -> None:
    with serving(claims_app(fake)) as client:
        answer = client.get("/claims", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 200
    assert answer.json() == {
        "signed_in": True,
        "user_id": "user_alice",
        "session_id": session["id"],
    }


def test_the_session_cookie_is_read_too(fake: FakeClerk, session: dict[str, Any]) -> None:
    with serving(claims_app(fake)) as client:
        client.cookies.set("__session", fake.mint_token(session["id"]))
        answer = client.get("/claims")
    assert answer.json()["session_id"] == session["id"]


def test_no_token_is_a_401_with_a_bare_bearer_challenge(fake: FakeClerk) -> None:
    with serving(claims_app(fake)) as client:
        answer = client.get("/claims")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json() == {"detail": "missing_token"}


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(lambda fake, sid: expired_token(fake, sid), "token_expired", id="expired"),
        pytest.param(lambda fake, sid: "not-a-jwt", "token_malformed", id="malformed"),
        pytest.param(
            lambda fake, sid: fake.mint_token(sid)[:-4] + "AAAA", "invalid_signature", id="forged"
        ),
        pytest.param(
            lambda fake, sid: fake.mint_token(sid, extra_claims={"sid": None}),
            "missing_claim",
            id="no sid",
        ),
    ],
)
def test_a_bad_token_is_a_401_naming_the_reason(
    fake: FakeClerk, session: dict[str, Any], token: Any, reason: str
) -> None:
    with serving(claims_app(fake)) as client:
        answer = client.get("/claims", headers=bearer(token(fake, session["id"])))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        f'Bearer error="invalid_token", error_description="{reason}"'
    )
    assert answer.json() == {"detail": reason}


def test_a_token_signed_before_a_key_rotation_is_refused(
    fake: FakeClerk, session: dict[str, Any]
) -> None:
    old = fake.mint_token(session["id"])
    fake.rotate_signing_key()
    with serving(claims_app(fake)) as client:
        assert (
            client.get("/claims", headers=bearer(fake.mint_token(session["id"]))).status_code == 200
        )
        answer = client.get("/claims", headers=bearer(old))
    assert answer.status_code == 401
    assert answer.json() == {"detail": "unknown_kid"}


def test_authorized_parties_are_enforced(fake: FakeClerk, session: dict[str, Any]) -> None:
    token = fake.mint_token(session["id"])  # azp: http://localhost:3000
    allowed = claims_app(fake, ClerkAuth(authorized_parties=["http://localhost:3000"]))
    other = claims_app(fake, ClerkAuth(authorized_parties=["https://app.example"]))
    with serving(allowed) as client:
        assert client.get("/claims", headers=bearer(token)).status_code == 200
    with serving(other) as client:
        answer = client.get("/claims", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json() == {"detail": "invalid_authorized_party"}


def test_authorized_parties_refuses_a_single_string() -> None:
    with pytest.raises(TypeError, match="not a str"):
        ClerkAuth(authorized_parties="https://app.example")


def test_a_pending_session_is_refused_unless_accepted(fake: FakeClerk) -> None:
    pending = fake.add_session(user_id="user_bob", status="pending")
    token = fake.mint_token(pending["id"])
    with serving(claims_app(fake)) as client:
        answer = client.get("/claims", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json() == {"detail": "session_pending"}
    with serving(claims_app(fake, ClerkAuth(accept_pending=True))) as client:
        assert client.get("/claims", headers=bearer(token)).json()["user_id"] == "user_bob"


def test_the_jwks_is_fetched_once_for_many_requests(
    fake: FakeClerk, session: dict[str, Any]
) -> None:
    token = fake.mint_token(session["id"])
    with serving(claims_app(fake)) as client:
        for _ in range(20):
            assert client.get("/claims", headers=bearer(token)).status_code == 200
    assert [record.raw_path for record in fake.requests] == ["/v1/jwks"]


def test_with_jwt_key_nothing_is_fetched(fake: FakeClerk, session: dict[str, Any]) -> None:
    auth = ClerkAuth(jwt_key=fake.public_key_pem)
    with serving(claims_app(fake, auth)) as client:
        answer = client.get("/claims", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 200
    assert fake.requests == []


def test_a_broken_jwt_key_is_a_503_not_a_401(fake: FakeClerk, session: dict[str, Any]) -> None:
    # The server's configuration is at fault: clients must not drop their tokens.
    auth = ClerkAuth(jwt_key="-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
    with serving(claims_app(fake, auth)) as client:
        answer = client.get("/claims", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 503
    assert "WWW-Authenticate" not in answer.headers


def test_an_unreachable_jwks_is_a_503(fake: FakeClerk, session: dict[str, Any]) -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    app = claims_app(fake, transport=httpx2.MockTransport(down), retry_config=None)
    with serving(app) as client:
        answer = client.get("/claims", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"


def test_the_request_state_is_left_on_request_state(
    fake: FakeClerk, session: dict[str, Any]
) -> None:
    app = FastAPI(lifespan=clerk_lifespan(**client_kwargs(fake)))

    @app.get("/", dependencies=[Depends(optional_session)])
    async def index(request: Request) -> dict[str, Any]:
        state: RequestState = request.state.clerk_auth
        return {"signed_in": state.is_signed_in, "reason": state.reason}

    with serving(app) as client:
        signed_out = client.get("/", headers=bearer(expired_token(fake, session["id"])))
        signed_in = client.get("/", headers=bearer(fake.mint_token(session["id"])))
    assert signed_out.json() == {"signed_in": False, "reason": "token_expired"}
    assert signed_in.json() == {"signed_in": True, "reason": None}


# ---------------------------------------------------------------- OptionalClerkAuth


def test_optional_session_is_none_when_signed_out_and_claims_when_in(
    fake: FakeClerk, session: dict[str, Any]
) -> None:
    with serving(claims_app(fake, optional_session)) as client:
        assert client.get("/claims").json() == {"signed_in": False}
        bad = client.get("/claims", headers=bearer(expired_token(fake, session["id"])))
        good = client.get("/claims", headers=bearer(fake.mint_token(session["id"])))
    assert bad.json() == {"signed_in": False}
    assert good.json()["session_id"] == session["id"]


def test_optional_session_still_reports_an_outage(fake: FakeClerk, session: dict[str, Any]) -> None:
    auth = OptionalClerkAuth(jwt_key="not a key")
    with serving(claims_app(fake, auth)) as client:
        answer = client.get("/claims", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 503


# ---------------------------------------------------------------- plain Starlette


def test_plain_starlette_app(fake: FakeClerk, session: dict[str, Any]) -> None:
    async def me(request: StarletteRequest) -> Response:
        claims = await require_session(request)
        return JSONResponse({"user_id": claims.user_id})

    app = Starlette(routes=[Route("/me", me)], lifespan=clerk_lifespan(**client_kwargs(fake)))
    with serving(app) as client:
        good = client.get("/me", headers=bearer(fake.mint_token(session["id"])))
        bad = client.get("/me", headers=bearer(expired_token(fake, session["id"])))
    assert good.json() == {"user_id": "user_alice"}
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"].endswith('error_description="token_expired"')
