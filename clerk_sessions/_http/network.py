"""An httpcore2 network backend on asyncio's own transports, for the client the SDK builds.

httpcore2 reaches the socket through its ``AnyIOBackend``, and anyio's socket and TLS
streams add a few layers per read and write (a receive guard, a checkpoint, a cancel
scope for every timeout, TLS done in Python over a memory BIO on top of the socket
stream). On a fast connection those layers are a large part of what an async GET costs
beyond a sync one, and the sync facade pays them on every call. This backend puts
httpcore2 straight on an ``asyncio.Protocol``: a read is a look at a buffer or one
future, a timeout is one timer on that future, TLS is asyncio's own ``start_tls``.
Measured against stock httpx2 in one run: see "The HTTP client the SDK builds" in
docs/explanation/architecture.md.

It is written against httpcore2's public backend interface (``AsyncNetworkBackend``,
``AsyncNetworkStream``, its exceptions) and plugged in through the public
``AsyncConnectionPool(network_backend=...)`` of the SDK's own transport
(`clerk_sessions._http.pool`); a client or transport the user passes keeps whatever it
has. The same client may still be used from trio: every connect checks which library
is running and hands anything but asyncio to httpcore2's own backend for it. It is a
fast path: ``CLERK_SESSIONS_NO_FAST_PATHS`` turns it off.

Errors are httpcore2's, mapped as its anyio backend maps them, so httpx2 and
`clerk_sessions._http.transport` see the same exceptions either way:

- connect: timeout -> ``ConnectTimeout``; any ``OSError`` -> ``ConnectError``
- TLS handshake: timeout -> ``ConnectTimeout``; ``SSLError``/``OSError`` -> ``ConnectError``
- read: timeout -> ``ReadTimeout``; connection reset, or closed by us -> ``ReadError``;
  the peer's clean close -> ``b""``
- write: timeout -> ``WriteTimeout``; connection lost, or closed by us -> ``WriteError``
"""

from __future__ import annotations

import asyncio
import select
import ssl
import sys
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import Any, cast

import httpcore2

__all__ = ["AsyncioBackend", "is_own_stream"]

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
