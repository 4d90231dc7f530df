"""``clerk.with_options(...)``: a client with other settings on the same pool and JWKS
cache; and what ``http_client`` accepts."""

from __future__ import annotations

import httpx2
import pytest

from clerk_sessions import AsyncClerk, Clerk, RateLimit, RetryConfig, errors
from clerk_sessions.testing import FakeClerk, FaultConfig

from ._ops import Recorder, seed

pytestmark = pytest.mark.anyio


def clerk_on(fake: FakeClerk, recorder: Recorder, **kwargs: object) -> AsyncClerk:
    return AsyncClerk(
        fake.secret_key, server_url="http://fake.test/v1", transport=recorder, **kwargs
    )


async def test_a_derived_client_shares_the_pool_and_uses_its_own_settings() -> None:
    fake = FakeClerk()
    seeded = seed(fake)
    recorder = Recorder(fake.transport())
    parent = clerk_on(fake, recorder)
    derived = parent.with_options(timeout_ms=250, http_headers={"X-Job": "nightly"})
    assert type(derived) is AsyncClerk
    assert derived._transport.client is parent._transport.client
    await derived.sessions.get(seeded.session_id)
    await parent.sessions.get(seeded.session_id)
    first, second = recorder.requests
    assert (first.headers["x-job"], first.extensions["timeout"]["read"]) == ("nightly", 0.25)
    assert "x-job" not in second.headers
    assert second.extensions["timeout"]["read"] == 30.0
    assert repr(derived) == repr(parent)


async def test_per_call_options_go_on_top_of_the_derived_ones() -> None:
    fake = FakeClerk()
    seeded = seed(fake)
    recorder = Recorder(fake.transport())
    derived = clerk_on(fake, recorder).with_options(http_headers={"X-A": "1", "X-B": "1"})
    await derived.sessions.get(seeded.session_id, http_headers={"X-B": "2"}, timeout_ms=100)
    (request,) = recorder.requests
    assert (request.headers["x-a"], request.headers["x-b"]) == ("1", "2")
    assert request.extensions["timeout"]["read"] == 0.1


async def test_a_derived_client_can_turn_retries_off() -> None:
    fake = FakeClerk(faults=FaultConfig(error_rate=1.0))
    seeded = seed(fake)
    recorder = Recorder(fake.transport())
    parent = clerk_on(fake, recorder, retry_config=RetryConfig(max_attempts=3))
    parent._transport.sleep = _no_sleep
    with pytest.raises(errors.ServerError):
        await parent.with_options(retry_config=None).sessions.get(seeded.session_id)
    assert len(recorder.requests) == 1
    with pytest.raises(errors.ServerError):
        await parent.sessions.get(seeded.session_id)
    assert len(recorder.requests) == 1 + 3


async def test_a_derived_client_can_have_its_own_rate_limit() -> None:
    limit = RateLimit(5, per_seconds=10)
    parent = AsyncClerk("sk_test_x", transport=httpx2.MockTransport(lambda r: httpx2.Response(200)))
    assert parent.with_options(rate_limit=limit)._transport.rate_limit is limit
    assert parent._transport.rate_limit is None
    assert parent.with_options(rate_limit=limit).with_options()._transport.rate_limit is limit


async def _no_sleep(seconds: float) -> None:
    return None


async def test_closing_a_derived_client_leaves_the_pool_open() -> None:
    fake = FakeClerk()
    seeded = seed(fake)
    parent = fake.async_client()
    async with parent.with_options(timeout_ms=1000) as derived:
        await derived.sessions.get(seeded.session_id)
    assert not parent._transport.client.is_closed
    await parent.sessions.get(seeded.session_id)
    await parent.aclose()
    assert parent._transport.client.is_closed


async def test_derived_clients_share_the_jwks_cache() -> None:
    fake = FakeClerk()
    seeded = seed(fake)
    parent = fake.async_client()
    await parent.verify_token(seeded.token)
    derived = parent.with_options(timeout_ms=1000)
    await derived.verify_token(seeded.token)
    await derived.with_options(http_headers={"X-A": "1"}).verify_token(seeded.token)
    assert [r.raw_path for r in fake.requests].count("/v1/jwks") == 1


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"http_headers": {"User-Agent": "mine"}}, ValueError),
        ({"timeout_ms": -1}, errors.ConfigurationError),
        ({"retry_config": "fast"}, errors.ConfigurationError),
        ({"rate_limit": 10}, errors.ConfigurationError),
        ({"http_headers": {"X-A": "1\n"}}, ValueError),
    ],
)
def test_with_options_checks_its_arguments(
    options: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        AsyncClerk("sk_test_x").with_options(**options)  # type: ignore[arg-type]
    with Clerk("sk_test_x") as clerk, pytest.raises(error):
        clerk.with_options(**options)  # type: ignore[arg-type]


def test_sync_with_options_shares_the_portal_and_pool() -> None:
    fake = FakeClerk()
    seeded = seed(fake)
    with fake.client() as parent:
        derived = parent.with_options(http_headers={"X-Job": "sync"}, timeout_ms=2000)
        assert type(derived) is Clerk
        assert derived.server_url == parent.server_url
        session = derived.sessions.get(seeded.session_id)
        assert [s.id for s in derived.sessions.iterate(user_id=seeded.user_id)] == [session.id]
        raw = derived.sessions.with_raw_response.get(seeded.session_id)
        assert raw.parse() == session
        assert derived._portal.client._transport.client is parent._portal.client._transport.client
        assert [r.headers.get("x-job") for r in fake.requests] == ["sync"] * 3
        with derived:
            pass  # closing the derived client closes nothing
        assert parent.sessions.get(seeded.session_id) == session
        assert derived.sessions.get(seeded.session_id) == session
        twice = derived.with_options(http_headers={"X-Twice": "1"})
        twice.sessions.get(seeded.session_id)
        assert fake.requests[-1].headers["x-job"] == "sync"
        assert fake.requests[-1].headers["x-twice"] == "1"
    with pytest.raises(errors.ClientClosedError):
        derived.sessions.get(seeded.session_id)


def test_a_sync_httpx_client_is_a_type_error_saying_what_to_pass() -> None:
    with (
        httpx2.Client() as http,
        pytest.raises(TypeError, match=r"httpx2\.AsyncClient or an httpx\.AsyncClient"),
    ):
        Clerk("sk_test_x", http_client=http)  # type: ignore[arg-type]
    with (
        httpx2.Client() as http,
        pytest.raises(TypeError, match=r"httpx2\.AsyncClient or an httpx\.AsyncClient"),
    ):
        AsyncClerk("sk_test_x", http_client=http)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got dict"):
        AsyncClerk("sk_test_x", http_client={})  # type: ignore[arg-type]


async def test_a_derived_client_can_use_a_shared_redis_quota(redis_url: str) -> None:
    from clerk_sessions.redis import RedisRateLimit

    fake = FakeClerk()
    seeded = seed(fake)
    parent = fake.async_client()
    quota = RedisRateLimit(redis_url, requests=100, per_seconds=10)
    derived = parent.with_options(rate_limit=quota)
    assert derived._transport.shared_limit is not None
    assert derived._transport.rate_limit is None
    await derived.sessions.get(seeded.session_id)
    await derived.aclose()  # closes nothing of the parent's
    await parent.sessions.get(seeded.session_id)
    # Back to an in-process limiter: the shared one is dropped, not kept beside it.
    limit = RateLimit(5, per_seconds=1)
    local = derived.with_options(rate_limit=limit)
    assert (local._transport.shared_limit, local._transport.rate_limit) == (None, limit)
    await parent.aclose()
    with pytest.raises(errors.ConfigurationError, match="RedisRateLimit"):
        parent.with_options(rate_limit=object())  # type: ignore[arg-type]
