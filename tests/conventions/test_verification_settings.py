"""The client's networkless verification settings: ``jwt_key`` and
``authorized_parties`` (with their environment defaults), ``jwks_cache_ttl_s``, and
``/jwks`` outside the rate limit; the FastAPI integration picks them up."""

# No `from __future__ import annotations`: FastAPI resolves the endpoint's annotations.
from typing import Annotated, Any

import anyio
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from clerk_sessions import AsyncClerk, Clerk, RateLimit, errors
from clerk_sessions.fastapi import clerk_lifespan, require_session
from clerk_sessions.models import SessionClaims
from clerk_sessions.testing import FakeClerk

from ._ops import seed

pytestmark = pytest.mark.anyio


def jwks_fetches(fake: FakeClerk) -> int:
    return sum(record.raw_path.endswith("/jwks") for record in fake.requests)


@pytest.fixture(autouse=True)
def _no_verification_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_JWT_KEY", raising=False)
    monkeypatch.delenv("CLERK_AUTHORIZED_PARTIES", raising=False)


async def test_a_client_jwt_key_verifies_without_any_request() -> None:
    fake = FakeClerk()
    token = seed(fake).token
    clerk = fake.async_client(jwt_key=fake.public_key_pem)
    claims = await clerk.verify_token(token)
    state = await clerk.authenticate_request({"authorization": f"Bearer {token}"})
    assert state.is_signed_in and state.claims == claims
    assert fake.requests == []


async def test_clerk_jwt_key_from_the_environment_is_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeClerk()
    token = seed(fake).token
    # As an environment variable often arrives: line breaks turned into "\n".
    monkeypatch.setenv("CLERK_JWT_KEY", fake.public_key_pem.replace("\n", "\\n"))
    clerk = fake.async_client()
    await clerk.verify_token(token)
    assert fake.requests == []


async def test_a_jwt_key_given_to_the_call_wins_over_the_client_one() -> None:
    fake, other = FakeClerk(), FakeClerk()
    token = seed(fake).token
    clerk = fake.async_client(jwt_key=other.public_key_pem)
    with pytest.raises(errors.TokenVerificationError, match="invalid_signature"):
        await clerk.verify_token(token)
    await clerk.verify_token(token, jwt_key=fake.public_key_pem)


def test_an_unusable_jwt_key_fails_at_construction_naming_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"^jwt_key is not usable"):
        AsyncClerk("sk_test_x", jwt_key="not a key")
    monkeypatch.setenv(
        "CLERK_JWT_KEY", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
    )
    with pytest.raises(errors.ConfigurationError, match=r"^CLERK_JWT_KEY is not usable"):
        Clerk("sk_test_x")


async def test_client_authorized_parties_apply_to_every_verification() -> None:
    fake = FakeClerk()
    token = seed(fake).token  # azp: http://localhost:3000
    clerk = fake.async_client(jwt_key=fake.public_key_pem, authorized_parties=["https://a.com"])
    with pytest.raises(errors.TokenVerificationError, match="invalid_authorized_party"):
        await clerk.verify_token(token)
    state = await clerk.authenticate_request({"authorization": f"Bearer {token}"})
    assert state.reason == "invalid_authorized_party"
    # The call's own list wins.
    await clerk.verify_token(token, authorized_parties=["http://localhost:3000"])


@pytest.mark.parametrize(
    ("value", "verifies"),
    [
        ("https://a.com, http://localhost:3000", True),
        ("https://a.com,,", False),
        (" , ", True),  # nothing listed: any party
    ],
)
async def test_clerk_authorized_parties_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, verifies: bool
) -> None:
    fake = FakeClerk()
    token = seed(fake).token
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", value)
    clerk = fake.async_client(jwt_key=fake.public_key_pem)
    state = await clerk.authenticate_request({"authorization": f"Bearer {token}"})
    assert state.is_signed_in is verifies


def test_authorized_parties_must_be_a_list_of_strings() -> None:
    with pytest.raises(TypeError, match="not a str"):
        AsyncClerk("sk_test_x", authorized_parties="https://a.com")
    with pytest.raises(TypeError, match="only strings"):
        AsyncClerk("sk_test_x", authorized_parties=[1])  # type: ignore[list-item]


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "300", True])
def test_a_bad_jwks_cache_ttl_is_a_configuration_error(ttl: Any) -> None:
    with pytest.raises(errors.ConfigurationError, match="jwks_cache_ttl_s"):
        AsyncClerk("sk_test_x", jwks_cache_ttl_s=ttl)


async def test_the_client_jwks_cache_ttl_expires_keys() -> None:
    fake = FakeClerk()
    token = seed(fake).token
    clerk = fake.async_client(jwks_cache_ttl_s=60)
    verifier = clerk._auth.verifier()
    now = [1000.0]
    verifier._clock = lambda: now[0]
    await clerk.verify_token(token)
    now[0] += 59
    await clerk.verify_token(token)
    assert jwks_fetches(fake) == 1
    now[0] += 1
    await clerk.verify_token(token)
    assert jwks_fetches(fake) == 2


async def test_jwks_fetches_do_not_wait_for_the_rate_limit() -> None:
    fake = FakeClerk()
    seeded = seed(fake)
    clerk = fake.async_client(rate_limit=RateLimit(1, per_seconds=3600))
    await clerk.sessions.get(seeded.session_id)  # the whole quota of the hour
    with anyio.move_on_after(0.3) as scope:
        await clerk.sessions.get(seeded.session_id)
    assert scope.cancelled_caught  # API calls do wait...
    with anyio.fail_after(10):
        await clerk.verify_token(seeded.token)  # ...a key fetch does not
    assert jwks_fetches(fake) == 1


def test_fastapi_is_networkless_when_clerk_jwt_key_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeClerk()
    seeded = seed(fake)
    monkeypatch.setenv("CLERK_SECRET_KEY", fake.secret_key)
    monkeypatch.setenv("CLERK_JWT_KEY", fake.public_key_pem)
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", "http://localhost:3000")
    # Nothing listens on the discard port: any request would fail.
    monkeypatch.setenv("CLERK_API_URL", "http://127.0.0.1:9/v1")
    app = FastAPI(lifespan=clerk_lifespan())

    @app.get("/me")
    async def me(claims: Annotated[SessionClaims, Depends(require_session)]) -> dict[str, str]:
        return {"user_id": claims.user_id}

    with TestClient(app) as http:
        answer = http.get("/me", headers={"Authorization": f"Bearer {seeded.token}"})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"user_id": seeded.user_id}
    assert fake.requests == []
