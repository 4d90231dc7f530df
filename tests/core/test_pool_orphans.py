"""A call cancelled before its new connection carried it leaves no connection behind.

Stock httpcore2 keeps such a connection forever when the cancellation lands after the
socket connected but before HTTP/1.1 marked the connection active (encode/httpcore#1093,
still there in httpcore2): it is neither closed, idle, expired nor available, so it
holds a pool slot, and its socket, until every slot is gone and each call fails with
``PoolTimeout``. The stock tests show that; the others show that the SDK's transport
(`clerk_sessions._http.pool`) closes such a connection at once.

The race is made deterministic with a network backend whose ``connect_tcp`` runs a
script: it cancels a scope and then returns a socket (or fails), so the cancellation
lands exactly where httpcore2 loses track of the connection. Everything here is built
through httpcore2's and httpx2's public API (``AsyncConnectionPool(network_backend=)``,
``pool.connections``), so it runs the same in the legacy-engine session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpcore2
import httpx2
import pytest

from clerk_sessions import AsyncClerk
from clerk_sessions._http.client import LIMITS
from clerk_sessions._http.pool import PoolTransport, ReclaimingPool
from clerk_sessions.testing import FakeClerk
from tests._engine import LEGACY, hx

pytestmark = pytest.mark.anyio

URL = "http://orphans.test/v1/sessions/sess_1"
NO_WAIT_FOR_A_SLOT = {"timeout": {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 0.0}}


class IdleStream(httpcore2.AsyncNetworkStream):
    """An open socket on which nothing is ever sent; records whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    # The timeout parameters are httpcore2's interface (ASYNC109 asks for a scope instead).
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        raise AssertionError("no request is sent on this socket")

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        raise AssertionError("no request is sent on this socket")

    async def aclose(self) -> None:
        self.closed = True


class ScriptedBackend(httpcore2.AsyncNetworkBackend):
    """Runs `script` for each connect while one is set; otherwise connects for real."""

    def __init__(self) -> None:
        self.real = httpcore2.AnyIOBackend()
        self.script: Callable[[], Awaitable[httpcore2.AsyncNetworkStream]] | None = None
        self.connects = 0

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore2.AsyncNetworkStream:
        self.connects += 1
        if self.script is not None:
            return await self.script()
        return await self.real.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.real.sleep(seconds)


def states(pool: httpcore2.AsyncConnectionPool) -> list[str]:
    return [connection.info() for connection in pool.connections]


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.lowlevel.checkpoint()


async def cancel_a_call_once_connected(
    pool: httpcore2.AsyncConnectionPool, backend: ScriptedBackend
) -> IdleStream:
    """Cancel a call at the first await after its connect, which returned a socket.

    On a stock pool that await is the HTTP/1.1 connection's state lock, outside both
    places where httpcore2 would mark the connection failed or closed.
    """
    stream = IdleStream()
    scope = anyio.CancelScope()

    async def connect() -> httpcore2.AsyncNetworkStream:
        scope.cancel()
        return stream

    backend.script = connect
    with scope:
        await pool.request("GET", URL)
    assert scope.cancelled_caught
    backend.script = None
    return stream


async def cancel_a_queued_call_as_a_slot_frees(
    pool: httpcore2.AsyncConnectionPool, backend: ScriptedBackend
) -> None:
    """Cancel a queued call B just as call A's failing connect frees the slot B waits for.

    A's connect cancels B and fails: the pool makes a connection for B, whose
    cancellation has been delivered but not yet run, and B leaves without using it.
    """
    release = anyio.Event()
    queued = anyio.CancelScope()

    async def connect() -> httpcore2.AsyncNetworkStream:
        await release.wait()
        queued.cancel()
        raise httpcore2.ConnectError("refused by the test")

    async def call_a() -> None:
        with pytest.raises(httpcore2.ConnectError):
            await pool.request("GET", URL)

    b_started = anyio.Event()

    async def call_b() -> None:
        with queued:
            b_started.set()
            await pool.request("GET", URL)
        assert queued.cancelled_caught

    backend.script = connect
    async with anyio.create_task_group() as tg:
        tg.start_soon(call_a)
        await until(lambda: backend.connects == 1)
        tg.start_soon(call_b)
        await b_started.wait()
        # B enters the pool's queue before its first suspension; let it get there.
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        release.set()
    assert backend.connects == 1, "B connected: the cancellation came too late to make the race"
    backend.script = None


async def test_stock_httpx2_keeps_an_unused_open_connection_of_a_cancelled_call() -> None:
    backend = ScriptedBackend()
    async with httpcore2.AsyncConnectionPool(max_connections=1, network_backend=backend) as pool:
        stream = await cancel_a_call_once_connected(pool, backend)
        assert [info.split(", ")[1:3] for info in states(pool)] == [["HTTP/1.1", "NEW"]]
        assert not stream.closed
        with pytest.raises(httpcore2.PoolTimeout):
            await pool.request("GET", URL, extensions=NO_WAIT_FOR_A_SLOT)


async def test_stock_httpx2_drops_a_connection_made_for_a_call_cancelled_while_queued() -> None:
    # httpcore 1.0.x kept this one too; httpcore2 drops it itself, so the SDK has nothing
    # to do for it (if a release brings it back, this test says so).
    backend = ScriptedBackend()
    async with httpcore2.AsyncConnectionPool(max_connections=1, network_backend=backend) as pool:
        await cancel_a_queued_call_as_a_slot_frees(pool, backend)
        assert "CONNECTING" not in states(pool)


async def test_the_sdk_pool_closes_an_unused_open_connection_of_a_cancelled_call() -> None:
    backend = ScriptedBackend()
    async with ReclaimingPool(max_connections=1, network_backend=backend) as pool:
        stream = await cancel_a_call_once_connected(pool, backend)
        assert states(pool) == []
        assert stream.closed
        # The slot is free again: this call reaches the (refusing) network at once.
        with pytest.raises(httpcore2.ConnectError):
            await pool.request(
                "GET", "http://127.0.0.1:9/v1/sessions", extensions=NO_WAIT_FOR_A_SLOT
            )


async def test_the_sdk_pool_keeps_a_connection_that_carried_its_request() -> None:
    fake = FakeClerk()
    async with fake.serve_async() as url, ReclaimingPool(max_connections=1) as pool:
        for _ in range(3):
            response = await pool.request("GET", f"{url}/sessions")
            assert response.status == 401  # it reached the server: no key was sent
        [info] = states(pool)
        assert "IDLE" in info and "Request Count: 3" in info


@pytest.fixture
async def served() -> Any:
    fake = FakeClerk()
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    async with fake.serve_async() as url:
        yield fake, url, session_id


async def test_an_sdk_client_on_its_own_transport_serves_the_next_call_after_an_orphan(
    served: Any,
) -> None:
    fake, url, session_id = served
    backend = ScriptedBackend()
    one_slot = httpx2.Limits(max_connections=1, max_keepalive_connections=1)
    transport = PoolTransport(
        ssl_context=httpx2.create_ssl_context(), limits=one_slot, network_backend=backend
    )
    async with AsyncClerk(fake.secret_key, server_url=url, transport=transport) as clerk:
        stream = await cancel_a_call_once_connected(transport.pool, backend)
        assert stream.closed
        assert (await clerk.sessions.get(session_id)).id == session_id
        [info] = states(transport.pool)
        assert "IDLE" in info


async def test_the_sdk_transport_raises_httpx2s_exceptions() -> None:
    transport = PoolTransport(ssl_context=httpx2.create_ssl_context(), limits=LIMITS)
    async with httpx2.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get("http://127.0.0.1:9/")  # the discard port: nothing listens
        with pytest.raises(httpx2.UnsupportedProtocol):
            await http.get("ftp://127.0.0.1/")


def test_the_client_the_sdk_builds_runs_on_the_sdk_transport() -> None:
    clerk = AsyncClerk("sk_test_x")
    http = clerk._transport.client
    assert isinstance(http, hx.AsyncClient)
    if LEGACY:  # the legacy-engine session builds stock httpx clients (tests/conftest.py)
        return
    transport = http._transport  # httpx2's attribute, read only by this test
    assert isinstance(transport, PoolTransport)
    assert type(transport.pool) is ReclaimingPool
    assert [c.info() for c in transport.pool.connections] == []


def test_behind_a_proxy_the_client_routes_as_httpx2_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx2 reads HTTPS_PROXY and NO_PROXY for a client built without a transport: the
    # SDK then leaves routing, and its transports, to httpx2 (httpx in the legacy run).
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    clerk = AsyncClerk("sk_test_x", server_url="https://api.clerk.test/v1")
    http = clerk._transport.client
    stock = hx.AsyncClient()
    assert list(http._mounts) == list(stock._mounts) != []
    assert not isinstance(http._transport, PoolTransport)


def test_a_user_transport_or_client_is_never_changed() -> None:
    transport = httpx2.AsyncHTTPTransport()
    with_transport = AsyncClerk("sk_test_x", transport=transport)
    assert with_transport._transport.client._transport is transport
    user_client = httpx2.AsyncClient()
    with_client = AsyncClerk("sk_test_x", http_client=user_client)
    assert with_client._transport.client is user_client
