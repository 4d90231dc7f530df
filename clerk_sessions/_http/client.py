"""The client the SDK builds when the user passes no ``http_client``.

An ``httpx2.AsyncClient`` with two differences from a stock one, each for a measured
reason (docs/explanation/architecture.md, "The HTTP client the SDK builds"):

1. no cookie jar: the API is authenticated by the secret key on every call;
2. its transport is `pool.PoolTransport`: httpcore2's pool, which closes the connections
   that cancelled calls orphan, with the SDK's pool limits, on asyncio's own transports
   (`pool.AsyncioBackend`, a fast path: ``CLERK_SESSIONS_NO_FAST_PATHS`` leaves
   httpcore2's own backend).

When the environment names a proxy (``HTTPS_PROXY`` and the like), httpx2 is left to
route requests as it does for any client (proxies, ``NO_PROXY``), on its own transports:
only the cookie jar differs. A transport passed by the caller (the testing fake's, a
``MockTransport``) is used as it is, on the client of its own library.
"""

from __future__ import annotations

import functools
import urllib.request
from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx2

from clerk_sessions._config import FAST_PATHS
from clerk_sessions._http.engine import HTTPX2, Engine
from clerk_sessions._http.pool import AsyncioBackend, PoolTransport

__all__ = ["LIMITS", "BuiltClient", "build_client", "proxies_in_environment"]

# 20 idle connections kept, not 64: the pool's work grows with the connections it holds.
# benchmarks/bench_bulk.py, 2,000 revokes at concurrency 64 on localhost (2 busy cores):
# 100/64 gave 112-273 ids/s, 100/20 gave 472-532 in the same runs (100/8 was faster still,
# but would reopen TLS connections at every burst against the real API).
LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20)


def proxies_in_environment() -> bool:
    """Whether the environment sends http(s) traffic through a proxy, as httpx2 reads it."""
    found = urllib.request.getproxies()
    return any(found.get(scheme) for scheme in ("http", "https", "all"))


@functools.cache
def _cookieless(engine: Engine) -> type[Any]:
    """The engine's ``AsyncClient``, keeping no cookies.

    The Backend API needs no cookie back; a stock client runs each response's headers
    through ``http.cookiejar`` and would then send whatever a proxy or CDN set on the way
    with every later call.
    """

    class NoCookies(engine.module.Cookies):  # type: ignore[name-defined, misc]
        """A cookie store that never stores."""

        def extract_cookies(self, response: Any) -> None:
            return None

    no_cookies = NoCookies()

    class CookielessClient(engine.async_client):  # type: ignore[name-defined, misc]
        """An ``AsyncClient`` that keeps no cookies."""

        @property
        def cookies(self) -> Any:
            return no_cookies

        @cookies.setter
        def cookies(self, cookies: Any) -> None:
            raise TypeError("the clerk-sessions HTTP client keeps no cookies")

    CookielessClient.__qualname__ = CookielessClient.__name__ = "CookielessAsyncClient"
    return CookielessClient


class BuiltClient(NamedTuple):
    """The client the SDK built, and the transport every one of its requests goes to.

    ``transport`` is None when the client routes requests itself (proxies from the
    environment); otherwise a request may be handed to it directly
    (``handle_async_request``, the transports' public API): the client would add nothing
    on the way, since it has no auth, event hooks, cookies or redirects to follow.
    """

    client: Any
    transport: Any | None


def build_client(
    *,
    headers: Mapping[str, str],
    timeout_s: float,
    transport: Any | None = None,
    engine: Engine = HTTPX2,
) -> BuiltClient:
    """The SDK's own client: every call carries ``headers`` and the ``timeout_s`` timeout.

    ``transport`` (None: the SDK's own `PoolTransport`) must be of ``engine``'s library.
    """
    client_class = _cookieless(engine)
    timeout = engine.timeout(timeout_s)
    if transport is None and engine is HTTPX2 and not proxies_in_environment():
        transport = PoolTransport(
            ssl_context=httpx2.create_ssl_context(),
            limits=LIMITS,
            network_backend=AsyncioBackend() if FAST_PATHS else None,
        )
    if transport is None:
        return BuiltClient(client_class(headers=headers, timeout=timeout, limits=LIMITS), None)
    return BuiltClient(
        client_class(headers=headers, timeout=timeout, transport=transport), transport
    )
