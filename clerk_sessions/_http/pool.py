"""The transport of the client the SDK builds: httpcore2's pool, minus one leak.

httpcore2 (as httpcore 1.0.x, encode/httpcore#1093) keeps a connection forever when the
call it was opened for is cancelled after the socket connected but before HTTP/1.1 marked
the connection active: the cancellation lands on the connection's state lock, outside the
two places where httpcore2 marks a connection failed or closed. The connection stays
``HTTP/1.1 NEW``: neither idle, closed, expired nor available, so the pool neither reuses
nor drops it, and its socket stays open. ``max_connections`` such orphans (request
timeouts in a web server, a batch job stopped with Ctrl-C) and every call fails with
``PoolTimeout``. ``tests/core/test_pool_orphans.py`` shows it on stock httpx2.

The repair uses public seams only. `ReclaimingPool` is an ``httpcore2.AsyncConnectionPool``
whose ``create_connection`` wraps each connection in a `_Guard`; when a call on a
connection fails or is cancelled and leaves it neither idle nor closed, no request owns it
any more (HTTP/1.1 carries one request at a time, and the failed one was it), so the
guard closes it. The pool then drops it like any closed connection, at once.

`PoolTransport` puts that pool under httpx2, as ``httpx2.AsyncHTTPTransport`` puts the
stock one: the request is handed to httpcore2, and httpcore2's exceptions become httpx2's.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, cast

import anyio
import httpcore2
import httpx2

__all__ = ["PoolTransport", "ReclaimingPool"]

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
