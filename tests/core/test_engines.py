"""Two engines, one behaviour: a user's httpx2 or httpx client runs the SDK as its own does.

The SDK builds its clients on httpx2. ``http_client=`` takes an ``httpx2.AsyncClient``
or an ``httpx.AsyncClient`` (the legacy engine), and on either the SDK sends the same
requests, raises the same errors (never an httpx or httpx2 exception), retries the same
way and keeps the same caps and deadlines. Each test runs on both user clients, against
a real server on a loopback port (the fake, or a hostile one made of raw sockets).
"""

from __future__ import annotations

import functools
import gzip
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import httpx
import httpx2
import pytest

from clerk_sessions import AsyncClerk, BackoffStrategy, Clerk, RetryConfig, errors
from clerk_sessions.testing import FakeClerk, FaultConfig
from tests.baddays._hostile import Conn, HostileServer, drip, response_head
from tests.conftest import REPO_ROOT
from tests.core._support import session_json

pytestmark = pytest.mark.anyio

ENGINES = [pytest.param(httpx2, id="httpx2"), pytest.param(httpx, id="httpx")]


@pytest.fixture(params=ENGINES)
def library(request: pytest.FixtureRequest) -> ModuleType:
    """The library of the user's client."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk()


@pytest.fixture
async def served(fake: FakeClerk) -> AsyncIterator[str]:
    async with fake.serve_async() as url:
        yield url


def wire(fake: FakeClerk) -> list[tuple[str, str, dict[str, str], bytes]]:
    """What the server saw, but the headers that name the client library and the port."""
    return [
        (
            r.method,
            r.raw_path,
            {k: v for k, v in r.headers.items() if k not in ("user-agent", "host")},
            r.body,
        )
        for r in fake.requests
    ]


async def every_operation(clerk: AsyncClerk, fake: FakeClerk) -> None:
    user_id = fake.add_user("user_engines")
    created = await clerk.sessions.create(user_id=user_id)
    await clerk.sessions.get(created.id)
    await clerk.sessions.list(user_id=user_id, status="active", limit=5)
    await clerk.sessions.create_token(created.id, expires_in_seconds=60)
    await clerk.sessions.revoke(created.id)


async def test_a_user_client_sends_the_requests_the_sdk_client_sends(
    library: ModuleType, served: str
) -> None:
    ours = FakeClerk(seed=1)
    theirs = FakeClerk(seed=1, secret_key=ours.secret_key)
    async with ours.serve_async() as our_url, theirs.serve_async() as their_url:
        async with AsyncClerk(ours.secret_key, server_url=our_url) as clerk:
            await every_operation(clerk, ours)
        async with library.AsyncClient() as http:
            clerk = AsyncClerk(theirs.secret_key, server_url=their_url, http_client=http)
            await every_operation(clerk, theirs)
            assert not http.is_closed
            await clerk.aclose()
            assert not http.is_closed, "the user's client is the user's to close"
    assert wire(theirs) == wire(ours)
    agent = theirs.requests[0].headers["user-agent"]
    assert agent.startswith("clerk-sessions/") and f" {library.__name__}/" in agent


async def test_a_user_clients_own_settings_are_kept(library: ModuleType, served: str) -> None:
    seen: list[str] = []

    async def hook(request: Any) -> None:
        seen.append(request.url.path)

    fake_key = "sk_test_user_settings"
    async with library.AsyncClient(
        headers={"X-App": "mine"}, event_hooks={"request": [hook]}
    ) as http:
        clerk = AsyncClerk(fake_key, server_url=served, http_client=http, retry_config=None)
        with pytest.raises(errors.AuthenticationError):
            await clerk.sessions.get("sess_1")
    assert seen == ["/v1/sessions/sess_1"]


async def test_raw_headers_are_the_engines_case_insensitive_headers(
    library: ModuleType, fake: FakeClerk, served: str
) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with library.AsyncClient() as http:
        clerk = AsyncClerk(fake.secret_key, server_url=served, http_client=http)
        raw = await clerk.sessions.with_raw_response.get(session_id)
    assert isinstance(raw.headers, library.Headers)
    assert raw.headers["Content-Type"] == raw.headers["content-type"]
    assert raw.parse().id == session_id


async def test_retries_run_the_same_on_a_user_client(library: ModuleType) -> None:
    fake = FakeClerk(faults=FaultConfig(error_rate=0.5, drop_before_rate=0.2, seed=5))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    retries = RetryConfig(backoff=BackoffStrategy(1, 2, 2.0, 20_000), max_attempts=20)
    async with fake.serve_async() as url, library.AsyncClient() as http:
        clerk = AsyncClerk(fake.secret_key, server_url=url, http_client=http, retry_config=retries)
        for _ in range(10):
            assert (await clerk.sessions.get(session_id)).id == session_id
    assert len(fake.requests) > 10  # some attempts failed and were retried


async def test_a_refused_connection_is_an_api_connection_error(library: ModuleType) -> None:
    async with library.AsyncClient() as http:
        clerk = AsyncClerk(
            "sk_test_x", server_url="http://127.0.0.1:9/v1", http_client=http, retry_config=None
        )
        with pytest.raises(errors.APIConnectionError) as caught:
            await clerk.sessions.get("sess_1")
    assert not isinstance(caught.value, errors.APITimeoutError)
    assert caught.value.request_sent is False
    assert "ConnectError" in str(caught.value)


async def test_the_libraries_timeout_is_an_api_timeout_error(library: ModuleType) -> None:
    def silent(conn: Conn) -> None:
        conn.read_request()
        conn.sock.recv(1)  # holds the connection, never answers

    with HostileServer(silent) as server:
        # The read times out; the connect has room (0.2 s of it timed out on a loaded
        # 2-core CI machine, which is not what this test is about).
        timeout = library.Timeout(0.2, connect=10.0)
        async with library.AsyncClient(timeout=timeout) as http:
            clerk = AsyncClerk(
                "sk_test_x", server_url=server.url, http_client=http, retry_config=None
            )
            with pytest.raises(errors.APITimeoutError, match="ReadTimeout"):
                await clerk.sessions.get("sess_1")


async def test_a_dripping_server_cannot_stretch_an_attempt_on_a_user_client(
    library: ModuleType,
) -> None:
    body = json.dumps(session_json("sess_1")).encode()

    def dripping(conn: Conn) -> None:
        conn.read_request()
        drip(conn, response_head(200, {"content-length": str(len(body))}) + body, every_s=0.05)

    with HostileServer(dripping) as server:
        async with library.AsyncClient() as http:
            clerk = AsyncClerk(
                "sk_test_x",
                server_url=server.url,
                http_client=http,
                timeout_ms=400,
                retry_config=None,
            )
            with pytest.raises(errors.APITimeoutError, match=r"did not finish within 0\.4 s"):
                await clerk.sessions.get("sess_1")


@functools.cache
def _bomb() -> bytes:
    """64 MiB of JSON whitespace, gzipped to about 64 KB."""
    return gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]")


async def test_a_gzip_bomb_is_abandoned_at_max_response_bytes_on_a_user_client(
    library: ModuleType,
) -> None:
    bomb = _bomb()

    def bombing(conn: Conn) -> None:
        conn.read_request()
        head = response_head(200, {"content-length": str(len(bomb)), "content-encoding": "gzip"})
        conn.send(head + bomb)

    with HostileServer(bombing) as server:
        async with library.AsyncClient() as http:
            clerk = AsyncClerk(
                "sk_test_x",
                server_url=server.url,
                http_client=http,
                max_response_bytes=1024 * 1024,
                retry_config=None,
            )
            with pytest.raises(errors.SDKError, match="larger than max_response_bytes"):
                await clerk.sessions.list(user_id="u")


async def test_an_event_hook_refusing_the_answer_is_an_sdk_error(
    library: ModuleType, served: str
) -> None:
    async def refuse(response: Any) -> None:
        response.raise_for_status()

    async with library.AsyncClient(event_hooks={"response": [refuse]}) as http:
        clerk = AsyncClerk("sk_test_wrong", server_url=served, http_client=http, retry_config=None)
        with pytest.raises(errors.SDKError, match="event hook refused the 401 answer") as caught:
            await clerk.sessions.get("sess_1")
    assert caught.value.status_code == 401
    assert caught.value.__cause__ is None


async def test_a_redirect_loop_of_a_user_client_is_an_api_connection_error(
    library: ModuleType,
) -> None:
    def loop(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.send(
                response_head(307, {"location": "/v1/sessions/sess_1", "content-length": "0"})
            )

    with HostileServer(loop) as server:
        async with library.AsyncClient(follow_redirects=True, max_redirects=3) as http:
            clerk = AsyncClerk("sk_test_x", server_url=server.url, http_client=http)
            with pytest.raises(errors.APIConnectionError, match="TooManyRedirects") as caught:
                await clerk.sessions.get("sess_1")
    assert caught.value.retryable is False


@pytest.mark.parametrize("library", ENGINES)
def test_the_sync_facade_runs_on_a_user_async_client(library: ModuleType, fake: FakeClerk) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    http = library.AsyncClient()
    with fake.serve() as url, Clerk(fake.secret_key, server_url=url, http_client=http) as clerk:
        assert clerk.sessions.get(session_id).id == session_id
        assert isinstance(clerk.sessions.with_raw_response.get(session_id).headers, library.Headers)
    assert not http.is_closed


@pytest.mark.parametrize("library", ENGINES)
@pytest.mark.parametrize("facade", [AsyncClerk, Clerk], ids=["AsyncClerk", "Clerk"])
def test_a_sync_client_of_either_library_is_a_type_error_naming_both(
    library: ModuleType, facade: type[Any]
) -> None:
    with (
        library.Client() as http,
        pytest.raises(
            TypeError, match=r"httpx2\.AsyncClient or an httpx\.AsyncClient.*sync Client"
        ),
    ):
        facade("sk_test_x", http_client=http)


@pytest.mark.parametrize("wrong", [{}, "http://x", object()], ids=["dict", "str", "object"])
def test_anything_else_is_a_type_error_naming_both(wrong: object) -> None:
    with pytest.raises(TypeError, match=r"httpx2\.AsyncClient or an httpx\.AsyncClient, got"):
        AsyncClerk("sk_test_x", http_client=wrong)  # type: ignore[arg-type]


async def test_a_transport_of_httpx_gives_an_sdk_client_of_httpx(fake: FakeClerk) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    transport = httpx.ASGITransport(app=fake.app)
    async with AsyncClerk(
        fake.secret_key, server_url="http://fake.clerk.test/v1", transport=transport
    ) as clerk:
        assert isinstance(clerk._transport.client, httpx.AsyncClient)
        assert (await clerk.sessions.get(session_id)).id == session_id


def test_a_transport_of_neither_library_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="async transport of httpx2 or httpx"):
        AsyncClerk("sk_test_x", transport=object())  # type: ignore[arg-type]


FRESH_PROCESS = """
import sys, anyio
import clerk_sessions
from clerk_sessions import AsyncClerk, Clerk

url, key, session_id = sys.argv[1:4]

async def main():
    async with AsyncClerk(key, server_url=url) as clerk:
        assert (await clerk.sessions.get(session_id)).id == session_id
        assert type(clerk._transport.client).__mro__[1].__module__.split(".")[0] == "httpx2"

anyio.run(main)
with Clerk(key, server_url=url) as clerk:
    assert clerk.sessions.get(session_id).id == session_id
    assert len(clerk.sessions.list(user_id="user_fresh")) == 1
print(sorted(name for name in sys.modules if name.split(".")[0] in ("httpx", "httpcore")))
"""


@pytest.fixture
def served_in_thread(fake: FakeClerk) -> Iterator[str]:
    with fake.serve() as url:
        yield url


def test_a_process_on_the_default_engine_never_imports_httpx_or_httpcore(
    fake: FakeClerk, served_in_thread: str
) -> None:
    session_id = fake.add_session(user_id=fake.add_user("user_fresh"))["id"]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(FRESH_PROCESS),
            served_in_thread,
            fake.secret_key,
            session_id,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert len(fake.requests) == 3


async def test_a_closed_client_says_so_with_a_typed_error(fake: FakeClerk) -> None:
    clerk = fake.async_client()
    await clerk.aclose()
    with pytest.raises(errors.ClientClosedError, match="client has been closed"):
        await clerk.sessions.get("sess_1")
    assert fake.requests == []


async def test_a_closed_user_client_says_so_with_a_typed_error(
    library: ModuleType, served: str
) -> None:
    http = library.AsyncClient()
    clerk = AsyncClerk("sk_test_x", server_url=served, http_client=http)
    await http.aclose()
    with pytest.raises(errors.ClientClosedError, match="client has been closed"):
        await clerk.sessions.get("sess_1")


ALIASED = """
import sys, httpx2
# An application that made `import httpx` mean httpx2: with httpx2's own function since
# 2.9, by hand before it.
if hasattr(httpx2, "alias_httpx"):
    httpx2.alias_httpx()
else:
    sys.modules["httpx"] = httpx2
import anyio, httpx
from clerk_sessions import AsyncClerk

async def main():
    async with httpx.AsyncClient() as http:
        clerk = AsyncClerk("sk_test_x", http_client=http)
        print(clerk._transport.engine.name, http.__class__.__module__.split(".")[0])

anyio.run(main)
"""


def test_an_application_that_aliased_httpx_to_httpx2_runs_on_the_httpx2_engine() -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(ALIASED)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["httpx2", "httpx2"]
