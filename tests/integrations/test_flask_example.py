"""examples/flask_app.py: the Flask recipe on the sync Clerk, in Flask's test client,
against the fake on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask.testing import FlaskClient

from clerk_sessions import Clerk
from clerk_sessions.testing import FakeClerk

from ._support import bearer, expired_token, load_example

example = load_example("flask_app.py", "clerk_examples_flask_app")


@pytest.fixture
def fake(served_fake: tuple[FakeClerk, str]) -> FakeClerk:
    served_fake[0].reset()
    return served_fake[0]


@pytest.fixture
def client(served_fake: tuple[FakeClerk, str]) -> Iterator[FlaskClient]:
    fake, url = served_fake
    with Clerk(fake.secret_key, server_url=url) as clerk:
        yield example.create_app(clerk).test_client()


def test_me_answers_from_the_token(fake: FakeClerk, client: FlaskClient) -> None:
    session = fake.add_session(user_id="user_alice")
    answer = client.get("/me", headers=bearer(fake.mint_token(session["id"])))
    assert answer.status_code == 200
    assert answer.json == {"user_id": "user_alice", "session_id": session["id"]}


def test_no_token_is_a_401_with_a_bare_bearer_challenge(client: FlaskClient) -> None:
    answer = client.get("/me")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_an_expired_token_is_a_401_naming_the_reason(fake: FakeClerk, client: FlaskClient) -> None:
    session = fake.add_session(user_id="user_alice")
    answer = client.get("/me", headers=bearer(expired_token(fake, session["id"])))
    assert answer.status_code == 401
    assert answer.json == {"detail": "token_expired"}
    assert answer.headers["WWW-Authenticate"].endswith('error_description="token_expired"')


def test_the_session_cookie_is_read_too(fake: FakeClerk, client: FlaskClient) -> None:
    session = fake.add_session(user_id="user_alice")
    client.set_cookie("__session", fake.mint_token(session["id"]))
    assert client.get("/me").json["user_id"] == "user_alice"  # type: ignore[index]


def test_authorized_parties_come_from_the_environment(
    served_fake: tuple[FakeClerk, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = served_fake
    token = fake.mint_token(fake.add_session()["id"])  # azp: http://localhost:3000
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", "https://app.example")
    with Clerk(fake.secret_key, server_url=url) as clerk:
        answer = example.create_app(clerk).test_client().get("/me", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json == {"detail": "invalid_authorized_party"}


def test_sign_out_others_revokes_the_callers_other_sessions_only(
    fake: FakeClerk, client: FlaskClient
) -> None:
    current, *others = (fake.add_session(user_id="user_alice")["id"] for _ in range(3))
    bystander = fake.add_session(user_id="user_bob")["id"]
    answer = client.post("/sessions/sign-out-others", headers=bearer(fake.mint_token(current)))
    assert answer.json == {"revoked": sorted(others), "failed": []}
    assert fake.get_session(current)["status"] == "active"
    assert {fake.get_session(other)["status"] for other in others} == {"revoked"}
    assert fake.get_session(bystander)["status"] == "active"


def test_by_default_the_client_comes_from_the_environment(
    served_fake: tuple[FakeClerk, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = served_fake
    session = fake.add_session(user_id="user_alice")
    monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
    monkeypatch.setenv("CLERK_API_URL", url)
    app = example.create_app()
    try:
        answer = app.test_client().get("/me", headers=bearer(fake.mint_token(session["id"])))
    finally:
        app.extensions["clerk"].close()
    assert answer.json == {"user_id": "user_alice", "session_id": session["id"]}


def test_request_threads_share_the_one_client(fake: FakeClerk, client: FlaskClient) -> None:
    # Flask serves requests on threads; the one sync Clerk serves them all.
    tokens = [fake.mint_token(fake.add_session(user_id=f"user_{n}")["id"]) for n in range(8)]

    def me(token: str) -> Any:
        return client.get("/me", headers=bearer(token)).json["user_id"]  # type: ignore[index]

    with ThreadPoolExecutor(8) as pool:
        users = list(pool.map(me, tokens * 3))
    assert users == [f"user_{n}" for n in range(8)] * 3
    assert [r.raw_path for r in fake.requests] == ["/v1/jwks"]
