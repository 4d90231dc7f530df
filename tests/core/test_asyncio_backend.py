"""The asyncio network backend: httpcore2's errors, timeouts, TLS, and where it is used.

Every async test runs on asyncio, where the backend does the work, and on trio, where
it hands each connect to httpcore2's own backend: both must give the same answers. The
servers are plain threads with blocking sockets (or the fake on uvicorn, over TLS), so
they work under either loop. The last part runs the SDK end to end on a real socket:
on the client it builds (httpx2 and this backend; an httpx client in the legacy-engine
run, where those tests show the same errors on the other engine).
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anyio
import httpcore2
import httpx2
import pytest
import trustme

from clerk_sessions import AsyncClerk, Clerk, errors
from clerk_sessions._config import FAST_PATHS
from clerk_sessions._http import pool as network
from clerk_sessions._http.client import LIMITS
from clerk_sessions._http.pool import AsyncioBackend, PoolTransport, ReclaimingPool
from clerk_sessions.testing import FakeClerk, FaultConfig
from tests._engine import LEGACY, hx

pytestmark = pytest.mark.anyio

Handler = Callable[[socket.socket, threading.Event], None]
SECRET = "sk_test_netbackend_0123456789"


@contextmanager
def tcp_server(handler: Handler) -> Iterator[int]:
    """Accept connections on a loopback port in a thread; run ``handler`` for each."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.02)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve_one(conn: socket.socket) -> None:
        # OSError/SSLError: the client gave up or failed the handshake, as some tests want.
        with contextlib.suppress(OSError, ssl.SSLError):
            handler(conn, stop)

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()
        for conn in accepted:
            conn.close()


def hold(conn: socket.socket, stop: threading.Event) -> None:
    """Accept, then never read and never answer."""
    stop.wait()


def send_then_close(payload: bytes) -> Handler:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        stop.wait()

    return handler


def reset(conn: socket.socket, stop: threading.Event) -> None:
    """Once the request arrives, close with SO_LINGER 0: the client gets a RST, not a FIN.

    Not at once: a RST that lands while the client is still connecting is a connect
    error on trio (its connect checks the socket's error after the handshake).
    """
    conn.recv(1)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def tls(ca: trustme.CA, then: Handler) -> Handler:
    """A handler that completes a TLS handshake for ``localhost`` first."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        then(context.wrap_socket(conn, server_side=True), stop)

    return handler


# ---------------------------------------------------------------------------- connect


async def test_a_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(httpcore2.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", free_port(), timeout=5)


async def test_a_connect_that_hangs_is_a_connect_timeout() -> None:
    # A listener with a full accept queue: Linux drops further SYNs, so connect hangs.
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            started = time.monotonic()
            with pytest.raises(httpcore2.ConnectTimeout):
                await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=0.2)
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------------------- read, write


async def test_reads_what_arrived_then_empty_bytes_after_the_peer_closes() -> None:
    with tcp_server(send_then_close(b"hello")) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        received = b""
        while chunk := await stream.read(65536, timeout=5):
            received += chunk
        assert received == b"hello"
        assert await stream.read(65536, timeout=5) == b""
        await stream.aclose()


async def test_a_large_body_arrives_whole_in_chunks_no_larger_than_asked() -> None:
    payload = random.Random(1).randbytes(3 * 1024 * 1024)
    with tcp_server(send_then_close(payload)) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await anyio.sleep(0.1)  # let more than the read buffer's high mark arrive
        chunks = []
        while chunk := await stream.read(65536, timeout=5):
            assert len(chunk) <= 65536
            chunks.append(chunk)
        assert b"".join(chunks) == payload
        await stream.aclose()


async def test_a_read_with_nothing_coming_is_a_read_timeout_after_the_timeout() -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        started = time.monotonic()
        with pytest.raises(httpcore2.ReadTimeout):
            await stream.read(65536, timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2
        await stream.aclose()


async def test_a_reset_connection_is_a_read_error() -> None:
    with tcp_server(reset) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await stream.write(b"GET / HTTP/1.1\r\n\r\n", timeout=5)
        with pytest.raises(httpcore2.ReadError):
            await stream.read(65536, timeout=5)
        await stream.aclose()


async def test_reading_or_writing_after_close_is_a_read_or_write_error() -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await stream.aclose()
        with pytest.raises(httpcore2.ReadError):
            await stream.read(65536, timeout=5)
        with pytest.raises(httpcore2.WriteError):
            await stream.write(b"GET / HTTP/1.1\r\n\r\n", timeout=5)


async def test_a_write_the_peer_never_reads_is_a_write_timeout() -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        with pytest.raises(httpcore2.WriteTimeout):
            await stream.write(b"x" * (64 * 1024 * 1024), timeout=0.2)
        await stream.aclose()


async def test_extra_info_names_both_ends_and_readability() -> None:
    with tcp_server(send_then_close(b"bye")) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        assert stream.get_extra_info("server_addr")[:2] == ("127.0.0.1", port)
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("socket").fileno() >= 0
        assert stream.get_extra_info("ssl_object") is None
        with anyio.fail_after(5):  # the peer's bytes and FIN make an idle stream readable
            while not stream.get_extra_info("is_readable"):  # noqa: ASYNC110 - a poll, no event
                await anyio.sleep(0.01)
        await stream.aclose()


async def test_an_idle_open_connection_is_not_readable() -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await anyio.sleep(0.05)
        assert stream.get_extra_info("is_readable") is False
        await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # on trio the stream is trio's
async def test_a_close_the_loop_has_not_read_yet_is_found_once_its_view_is_stale() -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        assert isinstance(stream, network._Stream)
        stream._transport.pause_reading()  # the loop stops looking at the socket
        stream.get_extra_info("socket").shutdown(socket.SHUT_RD)  # our end reads EOF now
        stream._seen_at = stream._loop.time()  # the loop has just looked
        assert stream.get_extra_info("is_readable") is False, "trusted: no system call"
        await anyio.sleep(network._TRUST_LOOP_S * 2)
        assert stream.get_extra_info("is_readable") is True, "stale: the kernel is asked"
        await stream.aclose()


async def test_a_read_whose_deadline_has_passed_times_out_at_once() -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        with pytest.raises(httpcore2.ReadTimeout):
            await stream.read(65536, timeout=0)
        await stream.aclose()
        await stream.aclose()  # closing twice is fine


def drain_after(delay: float) -> Handler:
    def handler(conn: socket.socket, stop: threading.Event) -> None:
        time.sleep(delay)
        while conn.recv(1 << 20):
            pass

    return handler


async def test_a_large_write_waits_for_the_reader_and_then_completes() -> None:
    with tcp_server(drain_after(0.2)) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await stream.write(b"x" * (32 * 1024 * 1024), timeout=10)  # paused, then resumed
        await stream.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio's stream is httpcore2's
async def test_writing_after_the_server_closed_is_a_write_error() -> None:
    with tcp_server(send_then_close(b"bye")) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        while await stream.read(65536, timeout=5):
            pass
        with pytest.raises(httpcore2.WriteError):
            await stream.write(b"GET / HTTP/1.1\r\n\r\n", timeout=5)
        await stream.aclose()


async def test_socket_options_are_applied_and_a_bad_one_is_a_connect_error() -> None:
    keepalive = (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp(
            "127.0.0.1", port, timeout=5, socket_options=[keepalive]
        )
        sock = stream.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert stream.get_extra_info("no_such_thing") is None
        await stream.aclose()
        with pytest.raises(httpcore2.ConnectError):
            await AsyncioBackend().connect_tcp(
                "127.0.0.1", port, timeout=5, socket_options=[(socket.SOL_SOCKET, 12345, 1)]
            )


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
async def test_a_unix_socket_connects_and_a_missing_one_is_a_connect_error(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path = str(tmp_path_factory.mktemp("unix") / "clerk.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"over unix")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        stream = await AsyncioBackend().connect_unix_socket(path, timeout=5)
        received = b""
        while chunk := await stream.read(65536, timeout=5):
            received += chunk
        assert received == b"over unix"
        await stream.aclose()
    finally:
        thread.join(5)
        listener.close()
    with pytest.raises(httpcore2.ConnectError):
        await AsyncioBackend().connect_unix_socket(path + ".missing", timeout=5)


async def test_sleep_runs_on_the_running_library() -> None:
    started = time.monotonic()
    await AsyncioBackend().sleep(0.05)
    assert time.monotonic() - started >= 0.04


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_closed_socket_counts_as_readable() -> None:
    sock = socket.socket()
    sock.close()
    assert network._kernel_readable(sock) is True


# ---------------------------------------------------------------------------- TLS


async def test_tls_to_a_trusted_certificate_carries_data(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    with tcp_server(tls(ca, send_then_close(b"secret"))) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        stream = await stream.start_tls(client_context, server_hostname="localhost", timeout=5)
        assert stream.get_extra_info("ssl_object") is not None
        assert await stream.read(65536, timeout=5) == b"secret"
        await stream.aclose()


async def test_tls_to_a_certificate_for_another_name_is_a_connect_error(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    with tcp_server(tls(ca, hold)) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        with pytest.raises(httpcore2.ConnectError):
            await stream.start_tls(client_context, server_hostname="api.clerk.com", timeout=5)


async def test_a_tls_handshake_the_server_never_answers_is_a_connect_timeout(
    client_context: ssl.SSLContext,
) -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        with pytest.raises(httpcore2.ConnectTimeout):
            await stream.start_tls(client_context, server_hostname="localhost", timeout=0.2)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio's stream is httpcore2's
async def test_tls_on_a_closed_stream_is_a_connect_error(client_context: ssl.SSLContext) -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await stream.aclose()
        with pytest.raises(httpcore2.ConnectError):
            await stream.start_tls(client_context, server_hostname="localhost", timeout=5)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio's stream is httpcore2's
async def test_a_cancelled_tls_handshake_is_cancelled_and_closes_the_socket(
    client_context: ssl.SSLContext,
) -> None:
    with tcp_server(hold) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        with anyio.move_on_after(0.1) as scope:
            await stream.start_tls(client_context, server_hostname="localhost", timeout=5)
        assert scope.cancelled_caught
        with pytest.raises(httpcore2.ReadError):  # closed by the cancelled handshake
            await stream.read(65536, timeout=5)
        await stream.aclose()


def https_answer(conn: socket.socket, stop: threading.Event) -> None:
    """Answer every request on a keep-alive connection with the same small JSON."""
    body = b'{"ok":true}'
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    buffer = b""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        buffer += data
        while b"\r\n\r\n" in buffer:
            _, buffer = buffer.split(b"\r\n\r\n", 1)
            conn.sendall(answer)


async def test_an_https_pool_on_the_backend_reuses_its_verified_connection(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    with tcp_server(tls(ca, https_answer)) as port:
        async with httpcore2.AsyncConnectionPool(
            ssl_context=client_context, network_backend=AsyncioBackend()
        ) as pool:
            for _ in range(3):
                response = await pool.request("GET", f"https://localhost:{port}/v1/sessions/x")
                assert (response.status, response.content) == (200, b'{"ok":true}')
            assert len(pool.connections) == 1
        async with httpcore2.AsyncConnectionPool(
            ssl_context=client_context, network_backend=AsyncioBackend()
        ) as pool:
            with pytest.raises(httpcore2.ConnectError):  # the certificate names localhost
                await pool.request("GET", f"https://127.0.0.1:{port}/v1/sessions/x")


# ---------------------------------------------------------------------------- the SDK


def transport_of(clerk: AsyncClerk) -> object:
    # httpx2's attribute, read only by these tests: the transport of the SDK's client.
    return clerk._transport.client._transport  # type: ignore[no-any-return]


async def test_the_client_the_sdk_creates_runs_on_the_backend_unless_the_fast_paths_are_off() -> (
    None
):
    clerk = AsyncClerk(SECRET)
    if LEGACY:  # the legacy-engine run builds stock httpx clients (tests/conftest.py)
        assert isinstance(clerk._transport.client, hx.AsyncClient)
        assert not isinstance(transport_of(clerk), PoolTransport)
    else:
        transport = transport_of(clerk)
        assert isinstance(transport, PoolTransport)
        assert type(transport.pool) is ReclaimingPool
        backend = transport.pool._network_backend  # httpcore2's attribute, as above
        assert isinstance(backend, AsyncioBackend) is FAST_PATHS
    await clerk.aclose()


async def test_a_user_transport_is_used_as_it_is() -> None:
    transport = httpx2.AsyncHTTPTransport()
    clerk = AsyncClerk(SECRET, transport=transport)
    assert clerk._transport.client._transport is transport
    await clerk.aclose()


async def test_a_refused_connection_is_an_api_connection_error_not_sent() -> None:
    clerk = AsyncClerk(SECRET, server_url=f"http://127.0.0.1:{free_port()}/v1", retry_config=None)
    with pytest.raises(errors.APIConnectionError) as caught:
        await clerk.sessions.get("sess_1")
    assert not isinstance(caught.value, errors.APITimeoutError)
    assert caught.value.request_sent is False
    await clerk.aclose()


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_server_that_never_answers_is_an_api_timeout_after_the_timeout(
    scheme: str, ca: trustme.CA, tls_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, host = hold, "127.0.0.1"
    if scheme == "https":  # the handshake completes, then the server says nothing
        monkeypatch.setenv("SSL_CERT_FILE", tls_files[1])
        handler, host = tls(ca, hold), "localhost"  # the name its certificate carries
    with tcp_server(handler) as port:
        clerk = AsyncClerk(
            SECRET, server_url=f"{scheme}://{host}:{port}/v1", timeout_ms=300, retry_config=None
        )
        started = time.monotonic()
        with pytest.raises(errors.APITimeoutError) as caught:
            await clerk.sessions.get("sess_1")
        assert 0.25 < time.monotonic() - started < 2.5
        assert caught.value.request_sent is True  # connected (and shook hands): GET sent
        await clerk.aclose()


async def test_cancelled_calls_leave_the_sdks_own_pool_idle_and_usable() -> None:
    # The SDK's own transport on this backend, built as the SDK builds it (in either run).
    transport = PoolTransport(
        ssl_context=httpx2.create_ssl_context(), limits=LIMITS, network_backend=AsyncioBackend()
    )
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.0, 0.01), seed=5))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    rng = random.Random(11)
    cancelled = 0
    async with (
        fake.serve_async() as url,
        AsyncClerk(fake.secret_key, server_url=url, transport=transport) as clerk,
    ):

        async def call_with_deadline() -> None:
            nonlocal cancelled
            with anyio.move_on_after(rng.uniform(0.0, 0.02)) as scope:
                await clerk.sessions.get(session_id)
            cancelled += scope.cancelled_caught

        async with anyio.create_task_group() as tg:
            for _ in range(300):
                tg.start_soon(call_with_deadline)
        assert cancelled > 30, "the test must really cancel calls in flight"
        assert all(c.is_idle() or c.is_closed() for c in transport.pool.connections)
        for _ in range(10):
            assert (await clerk.sessions.get(session_id)).id == session_id


# ---------------------------------------------------------------------------- TLS, end to end


@pytest.fixture(scope="module")
def tls_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(server chain and key PEM for 127.0.0.1 and localhost, the CA's PEM to trust)."""
    directory = tmp_path_factory.mktemp("tls")
    server_pem = directory / "server.pem"
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
        str(server_pem)
    )
    ca_pem = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    return str(server_pem), str(ca_pem)


async def test_the_sdk_talks_to_the_fake_over_verified_tls(
    tls_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server_pem, ca_pem = tls_files
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem)  # what httpx2 reads to build its context
    fake = FakeClerk()
    user = fake.add_user()
    session_id = fake.add_session(user_id=user)["id"]
    async with fake.serve_async(ssl_certfile=server_pem) as url:
        assert url.startswith("https://127.0.0.1:")
        async with AsyncClerk(fake.secret_key, server_url=url) as clerk:
            for _ in range(3):
                assert (await clerk.sessions.get(session_id)).id == session_id
            assert [s.id for s in await clerk.sessions.list(user_id=user)] == [session_id]
            assert (await clerk.sessions.revoke(session_id)).status == "revoked"
        assert len(fake.requests) == 5  # every call went through, verified


def test_the_sync_facade_talks_to_the_fake_over_verified_tls(
    tls_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server_pem, ca_pem = tls_files
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem)
    fake = FakeClerk()
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    with (
        fake.serve(ssl_certfile=server_pem) as url,
        Clerk(fake.secret_key, server_url=url) as clerk,
    ):
        results: list[str] = []

        def worker() -> None:
            for _ in range(20):
                results.append(clerk.sessions.get(session_id).id)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [session_id] * 80


async def test_a_certificate_the_client_does_not_trust_is_a_connection_error_not_sent(
    tls_files: tuple[str, str],
) -> None:
    server_pem, _ = tls_files  # SSL_CERT_FILE not set: certifi's roots, not our CA
    fake = FakeClerk()
    async with (
        fake.serve_async(ssl_certfile=server_pem) as url,
        AsyncClerk(fake.secret_key, server_url=url, retry_config=None) as clerk,
    ):
        with pytest.raises(errors.APIConnectionError) as caught:
            await clerk.sessions.get("sess_1")
    assert caught.value.request_sent is False
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert "SSL_CERT_FILE" in str(caught.value)  # and what to do about it
    assert not fake.requests, "nothing reached the server's app"
