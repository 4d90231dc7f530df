"""The in-process transport: httpx's ASGITransport, with drops turned into network errors."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from ._asgi import ConnectionDropped


class FakeTransport(httpx.AsyncBaseTransport):
    """Calls the fake's ASGI app in-process, like ``httpx.ASGITransport``.

    When the app drops the connection (a fault), raise what httpx raises over a real
    socket: ``httpx.RemoteProtocolError``, so client code sees the same failure in
    process and on a port.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from None

    async def aclose(self) -> None:
        await self._inner.aclose()
