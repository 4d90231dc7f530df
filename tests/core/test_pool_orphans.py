"""A call cancelled before its new connection carried it leaves no connection behind.

httpcore 1.0.x keeps such a connection forever (encode/httpcore#1093): it is neither
closed, idle, expired nor available, so it holds a pool slot until every slot is gone and
each call fails with ``PoolTimeout``. The stock-httpx tests document that bug, so they
will fail (and can go) once an httpcore release fixes it; the others show that the SDK's
own client (``clerk_sessions._pool``) takes such slots back.

The race is made deterministic with a network backend whose ``connect_tcp`` runs a
script: it cancels a scope and then either fails or returns a socket, so the
cancellation lands exactly at the point where httpcore loses track of the connection.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpcore
import httpx
import pytest
import sniffio

from clerk_sessions import AsyncClerk, _pool, _pool_primitives
from clerk_sessions._pool import ReclaimingConnectionPool, use_reclaiming_pool
from clerk_sessions.testing import FakeClerk

pytestmark = pytest.mark.anyio

URL = "http://orphans.test/v1/sessions/sess_1"
NO_WAIT_FOR_A_SLOT = httpx.Timeout(5.0, pool=0.0)


class IdleStream(httpcore.AsyncNetworkStream):
    """An open socket on which nothing is ever sent; records whether it was closed."""

    def __init__(self) -> None:
        self.closed = False
        self.writes = 0

    # The timeout parameters are httpcore's interface (ASYNC109 asks for a scope instead).
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        raise AssertionError("no request is sent on this socket")

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        # A real socket's write may suspend, and a cancelled call is stopped there: on
        # asyncio the SDK's pool takes asyncio's locks, which do not suspend when free,
        # so a cancellation that came during the connect lands here (see
        # `cancel_a_call_once_connected`). Nothing may be written past that point.
        self.writes += 1
        await anyio.lowlevel.checkpoint()
        raise AssertionError("no request is sent on this socket")

    async def aclose(self) -> None:
        self.closed = True


class ScriptedBackend(httpcore.AsyncNetworkBackend):
    """Runs `script` for each connect while one is set; otherwise connects for real."""

    def __init__(self) -> None:
        self.real = httpcore.AnyIOBackend()
        self.script: Callable[[], Awaitable[httpcore.AsyncNetworkStream]] | None = None
        self.connects = 0

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects += 1
        if self.script is not None:
            return await self.script()
        return await self.real.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.real.sleep(seconds)


def pool_of(http: httpx.AsyncClient) -> httpcore.AsyncConnectionPool:
    pool = http._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    return pool


def scripted(http: httpx.AsyncClient) -> ScriptedBackend:
    backend = ScriptedBackend()
    pool_of(http)._network_backend = backend  # connections made from now on use it
    return backend


def states(pool: httpcore.AsyncConnectionPool) -> list[str]:
    return [connection.info() for connection in pool.connections]


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.lowlevel.checkpoint()


async def cancel_a_queued_call_as_a_slot_frees(http: httpx.AsyncClient) -> None:
    """Leave a ``CONNECTING`` orphan in a stock pool.

    Every slot but one is taken by calls whose connect never ends; the last is taken by
    call A. Call B queues. A's connect then cancels B and fails: A's failure frees the
    slot and, without a pause, the pool creates a connection for B, whose cancellation
    has been delivered but not yet run. B then leaves the pool without using it.
    """
    pool = pool_of(http)
    backend = scripted(http)
    fillers = pool._max_connections - 1
    release = anyio.Event()
    queued = anyio.CancelScope()

    async def connect() -> httpcore.AsyncNetworkStream:
        if backend.connects <= fillers:
            await anyio.sleep_forever()
        await release.wait()
        queued.cancel()
        raise httpcore.ConnectError("refused by the test")

    async def call_a() -> None:
        with pytest.raises(httpx.ConnectError):
            await http.get(URL)

    async def call_b() -> None:
        with queued:
            await http.get(URL)
        assert queued.cancelled_caught

    backend.script = connect
    async with anyio.create_task_group() as hanging:
        for _ in range(fillers):
            hanging.start_soon(http.get, URL)
        await until(lambda: backend.connects == fillers)
        async with anyio.create_task_group() as tg:
            tg.start_soon(call_a)
            await until(lambda: backend.connects == fillers + 1)
            tg.start_soon(call_b)
            await until(lambda: len(pool._requests) == fillers + 2)
            release.set()
        assert backend.connects == fillers + 1, "B never tried to connect"
        # The calls still connecting kept their connections.
        assert sum(info == "CONNECTING" for info in states(pool)) >= fillers
        hanging.cancel_scope.cancel()
    backend.script = None


async def cancel_a_call_once_connected(http: httpx.AsyncClient) -> IdleStream:
    """Leave an ``HTTP/1.1 NEW`` orphan, holding its socket, in a stock pool.

    The connect cancels the call and returns a socket: the cancellation is delivered at
    the first await after the connect, the HTTP/1.1 connection's state lock, outside
    both places where httpcore would mark the connection failed or closed.

    On asyncio, the SDK's own pool has asyncio's locks (`clerk_sessions._pool_primitives`),
    which do not suspend when free: the cancellation then lands at the first write, once
    the connection is active, and httpcore closes it itself (no orphan is ever made).
    """
    backend = scripted(http)
    stream = IdleStream()
    scope = anyio.CancelScope()

    async def connect() -> httpcore.AsyncNetworkStream:
        scope.cancel()
        return stream

    backend.script = connect
    with scope:
        await http.get(URL)
    assert scope.cancelled_caught
    backend.script = None
    return stream


async def test_stock_httpx_keeps_a_connection_made_for_a_call_cancelled_while_queued() -> None:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as http:
        await cancel_a_queued_call_as_a_slot_frees(http)
        pool = pool_of(http)
        assert pool._requests == []
        assert states(pool) == ["CONNECTING"]  # encode/httpcore#1093
        with pytest.raises(httpx.PoolTimeout):
            await http.get(URL, timeout=NO_WAIT_FOR_A_SLOT)


async def test_stock_httpx_keeps_an_unused_open_connection_of_a_cancelled_call() -> None:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as http:
        stream = await cancel_a_call_once_connected(http)
        assert [info.split(", ")[1:3] for info in states(pool_of(http))] == [["HTTP/1.1", "NEW"]]
        assert not stream.closed
        with pytest.raises(httpx.PoolTimeout):
            await http.get(URL, timeout=NO_WAIT_FOR_A_SLOT)


@pytest.fixture
async def fake_and_url() -> Any:
    fake = FakeClerk()
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with fake.serve_async() as url:
        yield fake, url, session_id


async def test_the_sdk_client_drops_a_connection_made_for_a_call_cancelled_while_queued(
    fake_and_url: Any,
) -> None:
    fake, url, session_id = fake_and_url
    async with AsyncClerk(fake.secret_key, server_url=url) as clerk:
        http = clerk._transport.client
        await cancel_a_queued_call_as_a_slot_frees(http)
        pool = pool_of(http)
        assert pool._requests == []
        assert "CONNECTING" not in states(pool)
        assert (await clerk.sessions.get(session_id)).id == session_id


async def test_the_sdk_client_closes_an_unused_open_connection_of_a_cancelled_call(
    fake_and_url: Any,
) -> None:
    fake, url, session_id = fake_and_url
    async with AsyncClerk(fake.secret_key, server_url=url) as clerk:
        http = clerk._transport.client
        stream = await cancel_a_call_once_connected(http)
        assert states(pool_of(http)) == []
        assert stream.closed
        # Where the cancellation landed: at the state lock (trio's or anyio's, which
        # suspend), or at the write (asyncio's, which does not: 3.11+, fast paths on).
        pool = pool_of(http)
        assert isinstance(pool, ReclaimingConnectionPool)
        asyncio_locks = pool._asyncio_primitives and sniffio.current_async_library() == "asyncio"
        assert stream.writes == (1 if asyncio_locks else 0)
        assert (await clerk.sessions.get(session_id)).id == session_id


async def test_a_reclaiming_pool_of_one_slot_serves_the_next_call_after_either_orphan(
    fake_and_url: Any,
) -> None:
    fake, url, _ = fake_and_url
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as http:
        use_reclaiming_pool(http, httpx.Limits(max_connections=1))
        await cancel_a_queued_call_as_a_slot_frees(http)
        await cancel_a_call_once_connected(http)
        response = await http.get(f"{url}/sessions", timeout=NO_WAIT_FOR_A_SLOT)
        assert response.status_code == 401  # it reached the server: no key was sent
        assert len(fake.requests) == 1


def test_the_sdk_client_gets_the_pool_httpx_would_build_but_reclaiming() -> None:
    clerk = AsyncClerk("sk_test_x")
    stock = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
    )
    ours = pool_of(clerk._transport.client)
    assert type(ours) is ReclaimingConnectionPool
    assert (ours._max_connections, ours._max_keepalive_connections) == (100, 20)
    settings = ["_keepalive_expiry", "_http1", "_http2", "_retries", "_local_address", "_uds"]
    settings += ["_socket_options", "_proxy"]  # _proxy: httpcore 1.0.7 and later
    assert [getattr(ours, name, "absent") for name in settings] == [
        getattr(pool_of(stock), name, "absent") for name in settings
    ]
    stock_context, our_context = pool_of(stock)._ssl_context, ours._ssl_context
    assert our_context is not None and stock_context is not None
    assert (our_context.verify_mode, our_context.check_hostname) == (
        stock_context.verify_mode,
        stock_context.check_hostname,
    )
    assert our_context.get_ca_certs() == stock_context.get_ca_certs()


def test_proxy_variables_still_route_through_the_proxy_httpx_mounts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    clerk = AsyncClerk("sk_test_x", server_url="https://api.clerk.test/v1")
    http = clerk._transport.client
    stock = httpx.AsyncClient()
    assert list(http._mounts) == list(stock._mounts) != []
    via = http._transport_for_url(httpx.URL("https://api.clerk.test/v1/sessions"))
    assert isinstance(via, httpx.AsyncHTTPTransport)
    assert type(via._pool) is httpcore.AsyncHTTPProxy
    assert via is not http._transport
    assert type(pool_of(http)) is ReclaimingConnectionPool  # plain http still goes direct


def test_a_user_transport_or_client_is_never_changed() -> None:
    transport = httpx.AsyncHTTPTransport()
    with_transport = AsyncClerk("sk_test_x", transport=transport)
    assert with_transport._transport.client._transport is transport
    assert type(transport._pool) is httpcore.AsyncConnectionPool
    user_client = httpx.AsyncClient()
    with_client = AsyncClerk("sk_test_x", http_client=user_client)
    assert with_client._transport.client is user_client
    assert type(pool_of(user_client)) is httpcore.AsyncConnectionPool


def test_a_client_of_an_unexpected_shape_is_left_as_it_is() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    use_reclaiming_pool(http, httpx.Limits())
    assert isinstance(http._transport, httpx.MockTransport)


class UnknownConnection:
    """A connection of a shape this module does not know, as a future httpcore may have."""

    def is_closed(self) -> bool:
        return False

    def has_expired(self) -> bool:
        return False

    def is_idle(self) -> bool:
        return False


class OpaqueRequest:
    """A pool request without a ``connection`` attribute."""

    def is_queued(self) -> bool:
        return False


def test_without_the_internals_it_reads_the_pool_drops_nothing() -> None:
    pool = ReclaimingConnectionPool()
    unknown = UnknownConnection()
    pool._connections = [unknown]  # type: ignore[list-item]
    assert pool._assign_requests_to_connections() == []
    assert pool.connections == [unknown]  # type: ignore[comparison-overlap]

    never_connected = pool.create_connection(httpcore.URL(URL).origin)
    pool._connections = [never_connected]
    pool._requests = [OpaqueRequest()]  # type: ignore[list-item]
    assert pool._assign_requests_to_connections() == []
    assert pool._connections == [never_connected]

    pool._requests = []
    assert pool._assign_requests_to_connections() == [never_connected]
    assert pool._connections == []

    del pool._requests  # renamed, say: no way to tell which connections are in use
    pool._connections = [never_connected]
    assert pool._orphans() == []


@pytest.fixture
def unreported(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """As in a fresh process: nothing said yet about httpcore's shape."""
    monkeypatch.setattr(_pool, "_reported", False)
    caplog.set_level(logging.DEBUG, logger="clerk_sessions")


def shape_reports(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "is not shaped as clerk_sessions' pool" in r.message]


@pytest.mark.usefixtures("unreported")
def test_an_unknown_pool_shape_is_said_once_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    pool = ReclaimingConnectionPool()
    pool._connections = [UnknownConnection()]  # type: ignore[list-item]
    for _ in range(3):
        assert pool._assign_requests_to_connections() == []
    never_connected = pool.create_connection(httpcore.URL(URL).origin)
    pool._connections = [never_connected]
    pool._requests = [OpaqueRequest()]  # type: ignore[list-item]
    assert pool._assign_requests_to_connections() == []
    [record] = shape_reports(caplog)
    assert record.levelno == logging.DEBUG
    assert record.name == "clerk_sessions"
    assert "UnknownConnection has no _connection/_connect_failed" in record.message
    assert httpcore.__version__ in record.message


@pytest.mark.usefixtures("unreported")
def test_a_client_without_the_stock_pool_is_said_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    use_reclaiming_pool(http, httpx.Limits())
    [record] = shape_reports(caplog)
    assert "no stock pool (NoneType)" in record.message


@pytest.mark.usefixtures("unreported")
def test_the_installed_httpcore_is_the_expected_shape(caplog: pytest.LogCaptureFixture) -> None:
    # The pinned httpcore: the SDK's client gets the pool, and a pool at work finds every
    # internal it reads (an orphan is taken back), without a word in the log.
    clerk = AsyncClerk("sk_test_x")
    pool = pool_of(clerk._transport.client)
    assert type(pool) is ReclaimingConnectionPool
    never_connected = pool.create_connection(httpcore.URL(URL).origin)
    pool._connections = [never_connected]
    assert pool._assign_requests_to_connections() == [never_connected]
    assert shape_reports(caplog) == []


def test_the_pool_modules_import_nothing_of_the_sdk_but_each_other() -> None:
    for module, allowed in (
        (_pool, {"clerk_sessions._pool_primitives"}),
        (_pool_primitives, set()),
    ):
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        imported = [
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        ]
        sdk = [name for name in imported if name is None or name.startswith("clerk_sessions")]
        assert set(sdk) <= allowed, module.__name__
