"""The key stays secret: a key outside printable ASCII is refused at construction, a
protocol error is never retried nor echoes a header, and a plain http:// URL to another
host warns that the key would travel in clear text."""

from __future__ import annotations

import logging
import warnings

import httpx2
import pytest

from clerk_sessions import AsyncClerk, Clerk, errors

from ._hostile import SECRET, HostileServer

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    "key",
    [
        "sk_test_abc\x00def",
        "sk_test_abc\x7fdef",
        "sk_test_abc\tdef",
        "sk_test_abc def",
        "sk_test_abcdéf",
        "sk_test_abc\u200bdef",
    ],
    ids=["nul", "del", "tab", "space", "non-ascii", "zero-width"],
)
@pytest.mark.parametrize("client", [AsyncClerk, Clerk])
def test_a_key_outside_printable_ascii_is_refused_at_construction(
    client: type[AsyncClerk] | type[Clerk], key: str
) -> None:
    with pytest.raises(errors.ConfigurationError, match="printable ASCII") as info:
        client(key)
    assert "abc" not in str(info.value)


def test_a_key_from_the_environment_is_checked_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLERK_SECRET_KEY", "sk_test_\x01x")
    with pytest.raises(errors.ConfigurationError, match="printable ASCII"):
        AsyncClerk()


@pytest.mark.anyio
async def test_a_protocol_error_is_not_retried_and_does_not_echo_the_header(
    server: HostileServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The key is checked at construction, so the bad header here comes from the user's
    # own client; h11 refuses it, and its message would quote it.
    caplog.set_level(logging.DEBUG, logger="clerk_sessions")
    async with httpx2.AsyncClient(headers={"X-Secret-Thing": "s3cr3t\x00value"}) as http:
        clerk = AsyncClerk(SECRET, server_url=server.url, http_client=http)
        with pytest.raises(errors.APIConnectionError) as info:
            await clerk.sessions.get("sess_1")
    assert info.value.retryable is False
    assert "s3cr3t" not in str(info.value) and "Bearer" not in str(info.value)
    # Nothing that prints a traceback shows h11's message (which quotes the header).
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "s3cr3t" not in caplog.text and "retrying" not in caplog.text
    assert server.requests == []


@pytest.mark.parametrize("client", [AsyncClerk, Clerk])
def test_plain_http_to_another_host_warns_once(client: type[AsyncClerk] | type[Clerk]) -> None:
    with pytest.warns(UserWarning, match="clear text") as record:
        instance = client(SECRET, server_url="http://api.example.com/v1")
    assert len(record) == 1
    assert SECRET not in str(record[0].message)
    if isinstance(instance, Clerk):
        instance.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1",
        "http://127.0.0.1:8080/v1",
        "http://127.8.9.10/v1",
        "http://[::1]:8080/v1",
        "http://localhost:8080/v1",
        "http://fake.localhost/v1",
    ],
)
def test_tls_or_loopback_does_not_warn(url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AsyncClerk(SECRET, server_url=url)


def test_an_in_process_transport_does_not_warn() -> None:
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AsyncClerk(SECRET, server_url="http://fake.clerk.test/v1", transport=transport)
