"""The transport of the client the SDK builds: httpcore2's pool, minus one leak, on
asyncio's own transports. Public seams of httpx2 and httpcore2 only.

**The leak.** httpcore2 (as httpcore 1.0.x, encode/httpcore#1093) keeps a connection
forever when its call is cancelled after the socket connected but before HTTP/1.1 marked
the connection active: neither idle, closed, expired nor available, the pool neither
reuses nor drops it, and its socket stays open; ``max_connections`` such orphans and
every call fails with ``PoolTimeout`` (``tests/core/test_pool_orphans.py`` shows it on
stock httpx2). `ReclaimingPool` wraps each connection it creates (its public
``create_connection``) in a `_Guard`, which closes a connection that a failed or
cancelled call leaves neither idle nor closed: HTTP/1.1 carries one request at a time,
so nobody else owns it, and the pool drops it like any closed connection.

**The network.** httpcore2 reaches sockets through anyio's streams, which add layers to
every read and write (a receive guard, a checkpoint, a cancel scope per timeout, TLS in
Python over a memory BIO); the sync facade pays them on every call. `AsyncioBackend`
(httpcore2's public ``AsyncNetworkBackend`` interface, given to the pool as its
``network_backend``) puts httpcore2 straight on an ``asyncio.Protocol``: a read is a
look at a buffer or one future, a timeout one timer, TLS asyncio's own ``start_tls``.
Under trio each connect is handed to httpcore2's trio backend. It is a fast path:
``CLERK_SESSIONS_NO_FAST_PATHS`` leaves httpcore2's own backend. Its errors are
httpcore2's, mapped as its anyio backend maps them (connect and TLS: timeout ->
``ConnectTimeout``, ``OSError``/``SSLError`` -> ``ConnectError``; read: timeout ->
``ReadTimeout``, reset or closed by us -> ``ReadError``, the peer's close -> ``b""``;
write: timeout -> ``WriteTimeout``, lost or closed -> ``WriteError``).

`PoolTransport` puts the pool under httpx2, as ``httpx2.AsyncHTTPTransport`` puts the
stock one: httpcore2's exceptions become httpx2's.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable
from typing import Any, cast

import anyio
import httpcore2
import httpx2

__all__ = ["AsyncioBackend", "PoolTransport", "ReclaimingPool", "is_own_stream"]

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

# Unread bytes above which the socket stops being read (the server then waits on TCP
# flow control), and below which reading resumes. httpcore2 reads 64 KiB at a time.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
# What anyio uses, so a host with a broken IPv6 route connects as fast as before.
_HAPPY_EYEBALLS_DELAY_S = 0.25
# How long the loop's own view of an idle connection is trusted before the kernel is
# asked whether the server closed it. The loop reads every socket as data (or the FIN)
# arrives, so only what came in since its last look can be missed; against a remote
# server the FIN of a closing connection is in flight for half a round trip (many
# milliseconds) anyway, so no client can close that race, and asking the kernel on every
# pool check would cost a system call per idle connection twice per request (with
# threads waiting on the GIL, each one a chance to lose it).
_TRUST_LOOP_S = 0.005

_fail_after = asyncio.timeout


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


def _kernel_readable(sock: Any) -> bool:
    # Bytes (or the FIN) that reached the socket but not yet the loop, like httpcore2's
    # own check on anyio's raw socket; a closed socket reads as b"" at once.
    fd: int = sock.fileno()
    if fd < 0:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):  # pragma: no cover
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore2.AsyncNetworkStream, asyncio.Protocol):
    """One connection: the asyncio protocol that buffers what arrives, and the stream
    httpcore2 reads from and writes to.

    The loop reads the socket whenever data arrives and `data_received` queues it;
    `read` takes from that queue, and waits on a single future only when it is empty.
    httpcore2 never reads (or writes) one connection from two tasks at once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False  # the peer will send nothing more
        self._error: BaseException | None = None  # why the connection was lost, if not cleanly
        self._closed = False  # by `aclose`
        self._waiter: asyncio.Future[bool] | None = None
        # When the loop last delivered this connection's data, or the kernel was asked.
        self._seen_at = float("-inf")

    # ------------------------------------------------------------------ asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._seen_at = self._loop.time()
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> None:
        # Returning None lets the transport close itself: HTTP/1.1 never half-closes.
        self._eof = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _deadline(self, timeout: float | None) -> float | None:
        return None if timeout is None else self._loop.time() + timeout

    async def _wait(self, deadline: float | None) -> bool:
        """Wait for the next event on the connection; False once ``deadline`` has passed.

        A timer on the one future rather than a timeout scope: nothing to cancel and
        uncancel on the task, and an outer cancellation simply cancels the future. The
        deadline is fixed by the caller, so an event that does not end the wait (writing
        resumed while reading) does not restart the clock.
        """
        loop = self._loop
        if deadline is not None and loop.time() >= deadline:
            return False
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = None if deadline is None else loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    # ------------------------------------------------------------------ httpcore2 side

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` once the peer has closed the connection."""
        chunks = self._chunks
        deadline = None
        while not chunks and not self._eof and not self._closed:
            if deadline is None:
                deadline = self._deadline(timeout)
            if not await self._wait(deadline):
                error = TimeoutError()
                raise httpcore2.ReadTimeout(error) from error
        if self._closed:
            raise httpcore2.ReadError("the connection was closed")
        if chunks:
            data = chunks.popleft()
            if len(data) > max_bytes:
                chunks.appendleft(data[max_bytes:])
                data = data[:max_bytes]
            self._buffered -= len(data)
            if self._reading_paused and self._buffered <= _LOW_WATER and self._transport:
                self._reading_paused = False
                self._transport.resume_reading()
            return data
        # What arrived before a reset was returned above; only then does the reset show.
        if self._error is not None:
            raise httpcore2.ReadError(self._error) from self._error
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Hand ``buffer`` to the transport; wait only while its send buffer is full."""
        if not buffer:
            return
        transport = self._transport
        if self._closed or transport is None:
            raise httpcore2.WriteError("the connection was closed")
        if transport.is_closing():
            # Raised, not dropped: httpcore2 then reads whatever the server answered.
            error = self._error or ConnectionResetError("the server closed the connection")
            raise httpcore2.WriteError(error) from error
        try:
            transport.write(buffer)
        except (OSError, RuntimeError) as exc:
            raise httpcore2.WriteError(exc) from exc
        deadline = self._deadline(timeout)
        while self._writing_paused and not transport.is_closing():
            if not await self._wait(deadline):
                error = TimeoutError()
                raise httpcore2.WriteTimeout(error) from error
        if self._error is not None:
            raise httpcore2.WriteError(self._error) from self._error

    async def aclose(self) -> None:
        """Close at once, without waiting: never suspends, so it finishes even when it
        runs during a cancellation (httpcore2 closes connections in its cleanup paths).

        ``abort`` rather than ``close``: httpcore2 closes a connection only when it is done
        with it, so unsent bytes belong to an abandoned request, and TLS skips the
        close_notify exchange, as httpcore2 asks of anyio (``standard_compatible=False``).
        """
        if self._closed:
            return
        self._closed = True
        if self._transport is not None:
            self._transport.abort()
        self._wake()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """TLS over this connection (asyncio's SSL transport); this stream, upgraded."""
        plain = self._transport
        if plain is None or self._closed:
            raise httpcore2.ConnectError("the connection was closed")
        try:
            async with _fail_after(timeout):
                tls = await self._loop.start_tls(
                    plain, self, ssl_context, server_hostname=server_hostname
                )
        except BaseException as exc:
            # Also on cancellation: nothing else holds the socket yet.
            self._closed = True
            plain.abort()
            if isinstance(exc, TimeoutError):
                raise httpcore2.ConnectTimeout(exc) from exc
            if isinstance(exc, (ssl.SSLError, OSError)):
                raise httpcore2.ConnectError(exc) from exc
            raise
        if tls is None:  # pragma: no cover - only when the protocol is closed meanwhile
            raise httpcore2.ConnectError("the connection closed during the TLS handshake")
        self._transport = tls
        return self

    def get_extra_info(self, info: str) -> Any:
        """What httpcore2 (and ``response.extensions["network_stream"]``) may ask for."""
        transport = self._transport
        if info == "is_readable":
            # Idle and readable means the server is closing it: httpcore2 then drops it.
            if self._chunks or self._eof or self._closed or transport is None:
                return True
            now = self._loop.time()
            if now - self._seen_at < _TRUST_LOOP_S:
                return False
            self._seen_at = now
            sock = transport.get_extra_info("socket")
            return sock is None or _kernel_readable(sock)
        if transport is None:
            return None
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's network backend on asyncio transports; anything else goes to httpcore2's.

    Decided per connect (and per sleep), not once: one ``httpx2.AsyncClient`` may serve
    asyncio and trio code in turn. A connection opened on trio is trio's stream, so
    reads and writes need no check.
    """

    def __init__(self) -> None:
        self._other: httpcore2.AsyncNetworkBackend | None = None

    def _elsewhere(self) -> httpcore2.AsyncNetworkBackend | None:
        """httpcore2's backend for the running library, or None when it is asyncio."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # not asyncio: the SDK's other library, trio
        else:
            return None
        if self._other is None:
            # What httpcore2's default (AutoBackend) picks for trio. (The cast: httpcore2
            # declares a stand-in class for when trio is missing.)
            self._other = cast(httpcore2.AsyncNetworkBackend, httpcore2.TrioBackend())
        return self._other

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Open a TCP connection (asyncio's resolver and happy eyeballs, TCP_NODELAY)."""
        other = self._elsewhere()
        if other is not None:
            return await other.connect_tcp(
                host,
                port,
                timeout=timeout,
                local_address=local_address,
                socket_options=socket_options,
            )
        loop = asyncio.get_running_loop()
        opening = loop.create_connection(
            lambda: _Stream(loop),
            host,
            port,
            local_addr=None if local_address is None else (local_address, 0),
            happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY_S,
        )
        return await _connected(opening, timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Open a Unix domain socket connection."""
        other = self._elsewhere()
        if other is not None:
            return await other.connect_unix_socket(
                path, timeout=timeout, socket_options=socket_options
            )
        loop = asyncio.get_running_loop()
        opening = loop.create_unix_connection(lambda: _Stream(loop), path)
        return await _connected(opening, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running library (httpcore2 sleeps between connect retries)."""
        other = self._elsewhere()
        if other is not None:
            await other.sleep(seconds)
        else:
            await asyncio.sleep(seconds)


async def _connected(
    opening: Coroutine[Any, Any, tuple[asyncio.BaseTransport, _Stream]],
    timeout: float | None,
    options: Iterable[SocketOption] | None,
) -> _Stream:
    """Await ``opening`` (a loop's ``create_*connection``) under the connect timeout,
    with its errors as httpcore2's, then apply the socket options."""
    try:
        async with _fail_after(timeout):
            _, stream = await opening
    except TimeoutError as exc:  # before OSError: TimeoutError is one since 3.10
        raise httpcore2.ConnectTimeout(exc) from exc
    except OSError as exc:
        raise httpcore2.ConnectError(exc) from exc
    if options:
        sock = stream.get_extra_info("socket")
        try:
            for option in options:
                sock.setsockopt(*option)
        except OSError as exc:
            await stream.aclose()
            raise httpcore2.ConnectError(exc) from exc
    return stream


def is_own_stream(stream: object) -> bool:
    """Whether ``stream`` is one of this backend's (whose ``aclose`` never suspends and
    whose pool check sees the close at once)."""
    return isinstance(stream, _Stream)


# httpcore2's exception -> httpx2's, as httpx2's own transport maps them (the most
# specific class wins: the lookup walks the exception's MRO).
_EXCEPTIONS: dict[type[Exception], type[httpx2.TransportError]] = {
    httpcore2.ConnectTimeout: httpx2.ConnectTimeout,
    httpcore2.ReadTimeout: httpx2.ReadTimeout,
    httpcore2.WriteTimeout: httpx2.WriteTimeout,
    httpcore2.PoolTimeout: httpx2.PoolTimeout,
    httpcore2.TimeoutException: httpx2.TimeoutException,
    httpcore2.ConnectError: httpx2.ConnectError,
    httpcore2.ReadError: httpx2.ReadError,
    httpcore2.WriteError: httpx2.WriteError,
    httpcore2.NetworkError: httpx2.NetworkError,
    httpcore2.ProxyError: httpx2.ProxyError,
    httpcore2.UnsupportedProtocol: httpx2.UnsupportedProtocol,
    httpcore2.LocalProtocolError: httpx2.LocalProtocolError,
    httpcore2.RemoteProtocolError: httpx2.RemoteProtocolError,
    httpcore2.ProtocolError: httpx2.ProtocolError,
}


def _mapped(exc: Exception) -> httpx2.TransportError | None:
    for cls in type(exc).__mro__:
        target = _EXCEPTIONS.get(cls)
        if target is not None:
            return target(str(exc))
    return None


class _Guard:
    """One pooled connection, closed when a failed call leaves it owned by nobody.

    Not a subclass of ``httpcore2.AsyncConnectionInterface``: that class defines every
    method (as ``NotImplementedError``), so a method a later httpcore2 adds would not
    reach the connection through ``__getattr__``.
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: httpcore2.AsyncConnectionInterface) -> None:
        self._connection = connection

    async def handle_async_request(self, request: httpcore2.Request) -> httpcore2.Response:
        connection = self._connection
        try:
            return await connection.handle_async_request(request)
        except httpcore2.ConnectionNotAvailable:
            raise  # another request has it: the pool picks another connection
        except BaseException:
            if not (connection.is_idle() or connection.is_closed() or connection.can_multiplex()):
                # Still NEW (or ACTIVE) with no request on it: an orphan.
                with anyio.CancelScope(shield=True):
                    await connection.aclose()
            raise

    async def aclose(self) -> None:
        await self._connection.aclose()

    def info(self) -> str:
        return self._connection.info()

    def can_handle_request(self, origin: httpcore2.Origin) -> bool:
        return self._connection.can_handle_request(origin)

    def is_available(self) -> bool:
        return self._connection.is_available()

    def has_expired(self) -> bool:
        return self._connection.has_expired()

    def is_idle(self) -> bool:
        return self._connection.is_idle()

    def is_closed(self) -> bool:
        return self._connection.is_closed()

    def is_connected(self) -> bool:
        return self._connection.is_connected()

    def can_multiplex(self) -> bool:
        return self._connection.can_multiplex()

    def __getattr__(self, name: str) -> Any:
        # A method a later httpcore2 adds to the interface reaches the connection itself.
        return getattr(self._connection, name)

    def __repr__(self) -> str:
        return repr(self._connection)


class ReclaimingPool(httpcore2.AsyncConnectionPool):
    """httpcore2's pool, whose connections close themselves once orphaned (`_Guard`)."""

    def create_connection(self, origin: httpcore2.Origin) -> httpcore2.AsyncConnectionInterface:
        guard: Any = _Guard(super().create_connection(origin))
        return cast("httpcore2.AsyncConnectionInterface", guard)


class _ResponseStream(httpx2.AsyncByteStream):
    """A response body from httpcore2, with httpcore2's errors raised as httpx2's."""

    __slots__ = ("_stream",)

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


class PoolTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport over a `ReclaimingPool` (HTTP/1.1, no proxy)."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        limits: httpx2.Limits,
        network_backend: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        self.pool = ReclaimingPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=network_backend,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self.pool.handle_async_request(core_request)
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is None:
                raise
            raise mapped from exc
        assert isinstance(response.stream, AsyncIterable)
        return httpx2.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=cast("dict[str, Any]", response.extensions),  # pyright: ignore[reportUnknownMemberType]
        )

    async def aclose(self) -> None:
        await self.pool.aclose()
