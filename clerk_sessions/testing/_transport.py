"""The in-process transport: httpx2's ASGITransport, with drops turned into network errors."""

from __future__ import annotations

import httpx2
from starlette.types import ASGIApp

from ._asgi import ConnectionDropped


class FakeTransport(httpx2.AsyncBaseTransport):
    """Calls the fake's ASGI app in-process, like ``httpx2.ASGITransport``.

    When the app drops the connection (a fault), raise what the HTTP library raises over
    a real socket, ``RemoteProtocolError``, so client code sees the same failure in
    process and on a port.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx2.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx2.RemoteProtocolError(str(exc), request=request) from None

    async def aclose(self) -> None:
        await self._inner.aclose()
