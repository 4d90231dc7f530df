"""Clerk's official Python SDK (clerk-backend-api), which nobody here wrote, agrees with the fake.

clerk-backend-api is a test-only dependency (the ``official`` dependency group, never an
extra of this package). It needs httpx>=0.28.1, so the session on the lowest versions
our metadata allows (httpx 0.27) cannot install it and leaves this module out by name
(noxfile.py); every other session runs it, and fails here if the SDK is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import clerk_backend_api
import httpx
import pytest

from clerk_sessions.testing import FakeClerk


@pytest.fixture
def served() -> Iterator[tuple[FakeClerk, str]]:
    # The official SDK checks exp against the wall clock: the fake keeps real time.
    fake = FakeClerk()
    with fake.serve() as url:
        yield fake, url


def test_official_sdk_completes_every_sessions_call(served: tuple[FakeClerk, str]) -> None:
    fake, url = served
    user = fake.add_user()
    fake.add_template("hasura", claims={"role": "user"})
    with clerk_backend_api.Clerk(bearer_auth=fake.secret_key, server_url=url) as clerk:
        created = clerk.sessions.create(request={"user_id": user})
        assert created.status == "active"
        assert [s.id for s in clerk.sessions.list(user_id=user)] == [created.id]
        assert clerk.sessions.get(session_id=created.id).id == created.id
        token = clerk.sessions.create_token(session_id=created.id, expires_in_seconds=120)
        assert token.jwt
        templated = clerk.sessions.create_token_from_template(
            session_id=created.id, template_name="hasura"
        )
        assert templated.jwt
        refreshed = clerk.sessions.refresh(
            session_id=created.id,
            expired_token=token.jwt,
            refresh_token=fake.refresh_token(created.id),
            request_origin="http://localhost:3000",
        )
        assert refreshed.object == "token"
        revoked = clerk.sessions.revoke(session_id=created.id)
        assert revoked.status == "revoked"
    assert fake.get_session(created.id)["status"] == "revoked"
    assert [r.status for r in fake.requests] == [200] * 7


def test_official_authenticate_request_accepts_a_minted_token(
    served: tuple[FakeClerk, str],
) -> None:
    from clerk_backend_api.security import authenticate_request
    from clerk_backend_api.security.types import AuthenticateRequestOptions

    fake, _url = served
    session = fake.add_session()
    token = fake.mint_token(session["id"])
    request = httpx.Request("GET", "http://app.test/", headers={"Authorization": f"Bearer {token}"})
    options = AuthenticateRequestOptions(
        jwt_key=fake.public_key_pem, authorized_parties=[fake.authorized_party]
    )
    state = authenticate_request(request, options)
    assert state.is_signed_in, state.reason
    assert state.payload is not None and state.payload["sid"] == session["id"]


def test_official_verify_token_fetches_the_fakes_jwks(served: tuple[FakeClerk, str]) -> None:
    from clerk_backend_api.security import verify_token
    from clerk_backend_api.security.types import VerifyTokenOptions

    fake, url = served
    session = fake.add_session()
    options = VerifyTokenOptions(
        secret_key=fake.secret_key,
        api_url=url.removesuffix("/v1"),
        authorized_parties=[fake.authorized_party],
    )
    claims = verify_token(fake.mint_token(session["id"]), options)
    assert claims["sid"] == session["id"]
    assert [r.raw_path for r in fake.requests] == ["/v1/jwks"]
