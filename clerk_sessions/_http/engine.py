"""The libraries the SDK speaks the httpx API through, held by their public names only.

httpx2 is the engine of every client the SDK builds. httpx, the legacy engine, runs only
a client (or a transport) the user brings: such an object means httpx is imported
already, so the SDK never imports it itself, and a process on httpx2 carries no second
HTTP stack. An application that made ``import httpx`` resolve to httpx2
(``httpx2.alias_httpx()``) has one library under two names, and gets the httpx2 engine.

An `Engine` gathers, once, the names a request needs from its library: the client and
transport classes, ``Timeout``, the "use the client's default" marker, and the exception
classes the transport maps to the SDK's own errors. Everything else about a request
(``build_request``, ``send``, ``aiter_raw``, ``Headers``) is the same API on both.
"""

from __future__ import annotations

import platform
import sys
from types import ModuleType
from typing import Any, Final

import httpx2

from clerk_sessions._version import __version__

__all__ = ["HTTPX2", "Engine", "engine_of_client", "engine_of_transport"]


class Engine:
    """One HTTP library's names, looked up once (a request reads them as attributes)."""

    __slots__ = (
        "async_client",
        "async_transport",
        "headers",
        "http_error",
        "local_protocol_error",
        "module",
        "name",
        "not_sent",
        "request",
        "status_error",
        "sync_client",
        "timeout",
        "timeout_error",
        "transport_error",
        "use_client_default",
        "user_agent",
    )

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        #: The library's own name: "httpx2", or "httpx" for the legacy engine.
        self.name: str = module.__name__
        self.async_client: type[Any] = module.AsyncClient
        self.sync_client: type[Any] = module.Client
        self.async_transport: type[Any] = module.AsyncBaseTransport
        self.request: type[Any] = module.Request
        self.headers: type[Any] = module.Headers
        self.timeout: type[Any] = module.Timeout
        self.use_client_default: object = module.USE_CLIENT_DEFAULT
        self.timeout_error: type[Exception] = module.TimeoutException
        # Failures before the request left: it cannot have been processed.
        self.not_sent: tuple[type[Exception], ...] = (
            module.ConnectError,
            module.ConnectTimeout,
            module.PoolTimeout,
        )
        self.local_protocol_error: type[Exception] = module.LocalProtocolError
        self.transport_error: type[Exception] = module.TransportError
        self.status_error: type[Exception] = module.HTTPStatusError
        self.http_error: type[Exception] = module.HTTPError
        #: The SDK names itself and the library that carries its requests.
        self.user_agent = (
            f"clerk-sessions/{__version__} {self.name}/{module.__version__} "
            f"python/{platform.python_version()}"
        )

    def __repr__(self) -> str:
        return f"<Engine {self.name} {self.module.__version__}>"


#: The default engine.
HTTPX2: Final = Engine(httpx2)
# The legacy engine, made the first time a user's httpx object is seen.
_legacy: Engine | None = None


def _legacy_engine() -> Engine | None:
    """The httpx engine if httpx is imported as a library of its own, else None."""
    global _legacy
    module = sys.modules.get("httpx")
    if module is None or module is httpx2:
        return None
    if _legacy is None or _legacy.module is not module:
        _legacy = Engine(module)
    return _legacy


def engine_of_client(client: object) -> Engine | None:
    """The engine of an async client (httpx2's or httpx's), else None."""
    if isinstance(client, httpx2.AsyncClient):
        return HTTPX2
    legacy = _legacy_engine()
    if legacy is not None and isinstance(client, legacy.async_client):
        return legacy
    return None


def engine_of_transport(transport: object) -> Engine | None:
    """The engine of an async transport (httpx2's or httpx's), else None."""
    if isinstance(transport, httpx2.AsyncBaseTransport):
        return HTTPX2
    legacy = _legacy_engine()
    if legacy is not None and isinstance(transport, legacy.async_transport):
        return legacy
    return None


def is_sync_client(client: object) -> bool:
    """Whether ``client`` is a sync ``Client`` of either library (a common mistake)."""
    if isinstance(client, httpx2.Client):
        return True
    legacy = _legacy_engine()
    return legacy is not None and isinstance(client, legacy.sync_client)
