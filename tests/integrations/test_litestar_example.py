"""examples/litestar_app.py: the Litestar recipe (an AsyncClerk in its lifespan, a guard)
in Litestar's test client on asyncio and trio, against the fake's transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from litestar.testing import TestClient

from clerk_sessions.testing import FakeClerk

from ._support import bearer, expired_token, load_example

example = load_example("litestar_app.py", "clerk_examples_litestar_app")


def client_kwargs(fake: FakeClerk, **extra: Any) -> dict[str, Any]:
    return {
        "bearer_auth": fake.secret_key,
        "server_url": "http://fake.clerk.test/v1",
        "transport": fake.transport(),
        **extra,
    }


@pytest.fixture(params=["asyncio", "trio"])
def client(fake: FakeClerk, request: pytest.FixtureRequest) -> Iterator[TestClient[Any]]:
    app = example.create_app(**client_kwargs(fake))
    with TestClient(app, backend=request.param) as client:  # `with` runs the lifespan
        yield client


def test_me_answers_from_the_token(fake: FakeClerk, client: TestClient[Any]) -> None:
    session = fake.add_session(user_id="user_alice")
    answer = client.get("/me", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 200
    assert answer.json() == {"user_id": "user_alice", "session_id": session["id"]}


def test_the_guard_answers_401_with_a_bare_bearer_challenge_without_a_token(
    client: TestClient[Any],
) -> None:
    answer = client.get("/me")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_the_guard_answers_401_naming_the_reason_for_a_bad_token(
    fake: FakeClerk, client: TestClient[Any]
) -> None:
    session = fake.add_session(user_id="user_alice")
    answer = client.get("/me", headers=bearer(expired_token(fake, session["id"])))
    assert answer.status_code == 401
    assert answer.json()["detail"] == "token_expired"
    assert answer.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="token_expired"'
    )


def test_an_open_route_needs_no_token(client: TestClient[Any]) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_sign_out_others_revokes_the_callers_other_sessions_only(
    fake: FakeClerk, client: TestClient[Any]
) -> None:
    current, *others = (fake.add_session(user_id="user_alice")["id"] for _ in range(3))
    bystander = fake.add_session(user_id="user_bob")["id"]
    answer = client.post("/sessions/sign-out-others", headers=bearer(fake.mint_token(current)))
    assert answer.json() == {"revoked": sorted(others), "failed": []}
    assert fake.get_session(current)["status"] == "active"
    assert {fake.get_session(other)["status"] for other in others} == {"revoked"}
    assert fake.get_session(bystander)["status"] == "active"


def test_the_lifespan_opens_one_client_and_closes_it(fake: FakeClerk) -> None:
    app = example.create_app(**client_kwargs(fake))
    with TestClient(app) as client:
        clerk = app.state.clerk
        token = fake.mint_token(fake.add_session()["id"])
        for _ in range(3):
            assert client.get("/me", headers=bearer(token)).status_code == 200
        assert app.state.clerk is clerk
    assert [r.raw_path for r in fake.requests] == ["/v1/jwks"]
    with pytest.raises(RuntimeError, match="client has been closed"):
        anyio.run(clerk.sessions.list)


def test_an_unreachable_jwks_is_a_503(fake: FakeClerk) -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    app = example.create_app(
        **client_kwargs(fake, transport=httpx2.MockTransport(down), retry_config=None)
    )
    with TestClient(app) as client:
        answer = client.get("/me", headers=bearer(fake.mint_token(fake.add_session()["id"])))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
