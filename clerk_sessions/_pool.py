"""A connection pool that takes back the slots of requests cancelled before they sent.

httpcore 1.0.x leaks a pool slot when a request is cancelled after the pool has made a
new connection for it but before that connection has carried the request
(encode/httpcore#1093; fix proposed in #1099, earlier reports #658 and #830; fixed in
the pydantic/httpx2 fork by #983). Two moments leave such an orphan:

- the cancellation reaches the request while it waits for a connection, just after
  another task has created one for it: the entry stays ``CONNECTING``, with no socket;
- it reaches the request after its socket is open but before HTTP/1.1 marks the
  connection active: the entry stays ``HTTP/1.1 NEW`` and keeps the socket open.

Neither is closed, idle, expired or available, so the pool never reuses or removes it;
``max_connections`` of them and every request fails with ``PoolTimeout``. No request of
the pool refers to an orphan any more, which is how this pool tells it apart from a
connection that a live request is still opening.

The check reads httpcore internals (those of httpcore 1.0.3 to 1.0.9, the range
pyproject.toml pins). Where one is missing (another httpcore), it finds no orphan, says
so once at DEBUG on the ``clerk_sessions`` logger, and the pool behaves exactly like
httpcore's own. This module imports nothing from the SDK but `clerk_sessions._pool_primitives`.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import httpcore
import httpx

from clerk_sessions._pool_primitives import (
    give_asyncio_event,
    give_asyncio_locks,
    on_asyncio,
    shield_can_matter,
    shieldless_stream,
)

__all__ = ["ReclaimingConnectionPool", "use_reclaiming_pool"]

logger = logging.getLogger("clerk_sessions")

_MISSING = object()
_reported = False


def _unexpected(what: str) -> None:
    """Say once per process that httpcore is not shaped as this module expects.

    Once, because the check runs whenever a request enters or leaves the pool; at DEBUG,
    because nothing breaks: only the leak this module plugs is back.
    """
    global _reported
    if not _reported:
        _reported = True
        logger.debug(
            "httpcore %s is not shaped as clerk_sessions' pool expects (%s): pool slots of "
            "cancelled calls are not taken back (encode/httpcore#1093)",
            httpcore.__version__,
            what,
        )


def _never_used(connection: object) -> bool:
    """Still connecting, or connected but not yet sending its first request."""
    inner = cast(object, getattr(connection, "_connection", _MISSING))
    failed = cast(object, getattr(connection, "_connect_failed", _MISSING))
    if inner is _MISSING or failed is _MISSING:
        _unexpected(f"a pooled {type(connection).__name__} has no _connection/_connect_failed")
        return False
    if inner is None:
        # A failed connect marks the entry closed, and httpcore removes it itself.
        return failed is False
    # HTTP/1.1 leaves NEW for good once its first request starts.
    state = cast(object, getattr(inner, "_state", None))
    return getattr(state, "name", None) == "NEW"


class ReclaimingConnectionPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, which also drops connections orphaned by a cancelled request.

    With ``asyncio_primitives``, its locks, events and shields are asyncio's own while it
    runs on asyncio (`clerk_sessions._pool_primitives`, which says why).
    """

    def __init__(self, *args: Any, asyncio_primitives: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._asyncio_primitives = asyncio_primitives

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        response = await super().handle_async_request(request)
        # The stream's close itself falls back to httpcore's when a shield can matter.
        return shieldless_stream(response) if self._asyncio_primitives else response

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        connection = super().create_connection(origin)
        # Called only from within the pool's requests, so the library is the running one.
        if self._asyncio_primitives and on_asyncio():
            give_asyncio_locks(connection)
        return connection

    async def _close_connections(self, closing: list[httpcore.AsyncConnectionInterface]) -> None:
        # httpcore shields this even when there is nothing to close (nearly every time).
        if not closing:
            return
        if shield_can_matter():
            await super()._close_connections(closing)
            return
        for connection in closing:
            await connection.aclose()

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        if self._asyncio_primitives and self._requests:
            # The request that just entered is the last one, and this runs before httpcore
            # assigns (and so sets) its event. A request re-queued after
            # ConnectionNotAvailable (rare) keeps httpcore's event, which works as before.
            give_asyncio_event(self._requests[-1])
        # Runs (under the pool's lock) whenever a request enters or leaves the pool, so an
        # orphan is dropped by the very call that follows the cancellation. Returned with
        # the connections httpcore closes: an orphan that holds a socket is closed too.
        orphans = self._orphans()
        for connection in orphans:
            self._connections.remove(connection)
        return orphans + super()._assign_requests_to_connections()

    def _orphans(self) -> list[httpcore.AsyncConnectionInterface]:
        connections = getattr(self, "_connections", None)
        requests = getattr(self, "_requests", None)
        if not isinstance(connections, list) or not isinstance(requests, list):
            _unexpected("the pool has no _connections and _requests lists")
            return []
        unused = [
            connection
            for connection in cast("list[httpcore.AsyncConnectionInterface]", connections)
            if _never_used(connection)
        ]
        if not unused:  # the usual case: every connection has carried a request
            return []
        owned: list[object] = []
        for request in cast("list[object]", requests):
            connection = getattr(request, "connection", _MISSING)
            if connection is _MISSING:
                # No way to tell which connection a request holds: drop nothing.
                _unexpected(f"a pool request ({type(request).__name__}) has no connection")
                return []
            owned.append(connection)
        return [c for c in unused if not any(c is connection for connection in owned)]


def use_reclaiming_pool(
    client: httpx.AsyncClient,
    limits: httpx.Limits,
    *,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
    asyncio_primitives: bool = False,
) -> None:
    """Give the default transport of a new ``client`` a `ReclaimingConnectionPool`.

    The client is built by httpx first and only its pool replaced, because a client given
    ``transport=`` ignores the proxy environment variables. Transports that httpx mounts
    for those proxies keep httpx's own pools. The new pool has the settings httpx gives
    its default pool, including the SSL context httpx built for it, on
    ``network_backend`` (None: httpcore's default), with asyncio's own locks and events
    when ``asyncio_primitives`` (`ReclaimingConnectionPool`). If the client is not shaped
    as expected, it is left as it is.
    """
    transport = getattr(client, "_transport", None)
    stock = getattr(transport, "_pool", None)
    ssl_context = getattr(stock, "_ssl_context", None)
    if type(stock) is not httpcore.AsyncConnectionPool or ssl_context is None:
        _unexpected(f"the client's default transport has no stock pool ({type(stock).__name__})")
        return
    transport._pool = ReclaimingConnectionPool(  # type: ignore[union-attr]
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        retries=0,
        network_backend=network_backend,
        asyncio_primitives=asyncio_primitives,
    )
