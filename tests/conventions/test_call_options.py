"""Per-call ``server_url``, ``timeout_ms`` and ``http_headers`` on every operation of
both clients, and the checks that run on them before any I/O."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from clerk_sessions import AsyncClerk, Clerk, errors
from clerk_sessions.testing import FakeClerk

from ._ops import ALL_OPS, Recorder, Seeded, call_async, call_sync, seed

pytestmark = pytest.mark.anyio

OPTIONS: dict[str, Any] = {
    "server_url": "http://elsewhere.test/v1/",
    "timeout_ms": 1234,
    "http_headers": {"X-Request-Id": "req-42", "X-Tenant": "acme"},
}


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk()


@pytest.fixture
def seeded(fake: FakeClerk) -> Seeded:
    return seed(fake)


@pytest.fixture
def recorder(fake: FakeClerk) -> Recorder:
    return Recorder(fake.transport())


@pytest.fixture
def async_clerk(fake: FakeClerk, recorder: Recorder) -> AsyncClerk:
    return AsyncClerk(fake.secret_key, server_url="http://fake.clerk.test/v1", transport=recorder)


@pytest.fixture
def sync_clerk(fake: FakeClerk, recorder: Recorder) -> Iterator[Clerk]:
    with Clerk(fake.secret_key, server_url="http://fake.clerk.test/v1", transport=recorder) as c:
        yield c


def assert_every_request_used_the_options(recorder: Recorder) -> None:
    assert recorder.requests
    for request in recorder.requests:
        assert request.url.host == "elsewhere.test"
        assert request.url.path.startswith("/v1/sessions")
        assert request.headers["x-request-id"] == "req-42"
        assert request.headers["x-tenant"] == "acme"
        # The client's own headers are still there, untouched.
        assert request.headers["authorization"].startswith("Bearer sk_test_")
        assert request.headers["user-agent"].startswith("clerk-sessions/")
    assert set(recorder.timeouts()) == {1.234}


@pytest.mark.parametrize("op", ALL_OPS)
async def test_every_async_operation_takes_the_per_call_options(
    async_clerk: AsyncClerk, recorder: Recorder, seeded: Seeded, op: str
) -> None:
    await call_async(async_clerk.sessions, op, seeded, **OPTIONS)
    assert_every_request_used_the_options(recorder)


@pytest.mark.parametrize("op", ALL_OPS)
def test_every_sync_operation_takes_the_per_call_options(
    sync_clerk: Clerk, recorder: Recorder, seeded: Seeded, op: str
) -> None:
    call_sync(sync_clerk.sessions, op, seeded, **OPTIONS)
    assert_every_request_used_the_options(recorder)


async def test_without_options_a_call_uses_the_client_settings(
    async_clerk: AsyncClerk, recorder: Recorder, seeded: Seeded
) -> None:
    await async_clerk.sessions.get(seeded.session_id)
    (request,) = recorder.requests
    assert request.url.host == "fake.clerk.test"
    assert "x-request-id" not in request.headers
    assert list(recorder.timeouts()) == [30.0]


async def test_verify_keeps_its_api_version_with_per_call_headers(
    async_clerk: AsyncClerk, recorder: Recorder, seeded: Seeded
) -> None:
    await call_async(async_clerk.sessions, "verify", seeded, http_headers={"X-A": "b"})
    (request,) = recorder.requests
    assert request.headers["clerk-api-version"] == "2025-03-12"
    assert request.headers["x-a"] == "b"


RESERVED = ["authorization", "Clerk-API-Version", "USER-AGENT"]


@pytest.mark.parametrize("name", RESERVED)
@pytest.mark.parametrize("op", ALL_OPS)
async def test_a_reserved_header_raises_before_any_io(
    async_clerk: AsyncClerk, recorder: Recorder, seeded: Seeded, op: str, name: str
) -> None:
    with pytest.raises(ValueError, match=f"cannot replace '{name}'"):
        await call_async(async_clerk.sessions, op, seeded, http_headers={name: "x"})
    assert recorder.requests == []


@pytest.mark.parametrize("op", ALL_OPS)
def test_a_reserved_header_raises_before_any_io_on_the_sync_client(
    sync_clerk: Clerk, recorder: Recorder, seeded: Seeded, op: str
) -> None:
    with pytest.raises(ValueError, match="Authorization"):
        call_sync(sync_clerk.sessions, op, seeded, http_headers={"authorization": "Bearer x"})
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        pytest.param(
            {"http_headers": {"X-A": "1\r\nX-B: 2"}}, ValueError, "cannot carry", id="crlf"
        ),
        pytest.param(
            {"http_headers": {"X-A": "caf\u00e9"}}, ValueError, "cannot carry", id="non-ascii"
        ),
        pytest.param(
            {"http_headers": {"Bad Name": "1"}}, ValueError, "invalid header name", id="name"
        ),
        pytest.param({"http_headers": {"X-A": 1}}, TypeError, "str to str", id="int value"),
        pytest.param({"http_headers": [("X-A", "1")]}, TypeError, "mapping", id="not a mapping"),
        pytest.param(
            {"server_url": "api.clerk.com"},
            errors.ConfigurationError,
            "absolute",
            id="relative url",
        ),
        pytest.param({"server_url": 42}, errors.ConfigurationError, "string", id="url not str"),
        pytest.param({"timeout_ms": 0}, errors.ConfigurationError, "positive", id="zero timeout"),
        pytest.param(
            {"timeout_ms": 1.5}, errors.ConfigurationError, "positive", id="float timeout"
        ),
    ],
)
@pytest.mark.parametrize("op", ["get", "iterate", "revoke_many"])
async def test_a_bad_option_is_a_clear_error_before_any_io(
    async_clerk: AsyncClerk,
    recorder: Recorder,
    seeded: Seeded,
    op: str,
    options: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    # For bulk operations too: a bad option must not become every id's failure.
    with pytest.raises(error, match=message):
        await call_async(async_clerk.sessions, op, seeded, **options)
    assert recorder.requests == []


async def test_a_bad_header_value_is_not_echoed_in_the_error(
    async_clerk: AsyncClerk, seeded: Seeded
) -> None:
    with pytest.raises(ValueError) as info:
        await async_clerk.sessions.get(
            seeded.session_id, http_headers={"Proxy-Authorization": "secret\n"}
        )
    assert "secret" not in str(info.value)
