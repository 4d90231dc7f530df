"""The ``httpx.AsyncClient`` the SDK builds for itself when none is passed.

Three things differ from a stock client, each for a measured reason (see "The HTTP
client the SDK builds" in docs/explanation/architecture.md):

1. no cookie jar: the API is authenticated by the secret key on every call;
2. pool limits, on a pool that takes back the slots of cancelled calls (`_pool`);
3. the asyncio network backend, on Python 3.11+ (`_netbackend`), and with it asyncio's
   own locks and events in the pool (`_pool_primitives`), unless the fast paths are off
   (``CLERK_SESSIONS_NO_FAST_PATHS``, `_config.FAST_PATHS`).

A client the user passes as ``http_client`` is used exactly as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from clerk_sessions._config import FAST_PATHS
from clerk_sessions._netbackend import default_backend
from clerk_sessions._pool import use_reclaiming_pool

__all__ = ["LIMITS", "build_client"]

# 20 idle connections kept, not 64: httpcore's pool work grows with the connections it
# holds. benchmarks/bench_bulk.py, 2,000 revokes at concurrency 64 on localhost (2 busy
# cores, noisy): 100/64 gave 112-273 ids/s, 100/20 gave 472-532 in the same runs (100/8
# was faster still, but would reopen TLS connections at every burst against the real API).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class _NoCookies(httpx.Cookies):
    """A cookie store that never stores."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _CookielessClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that keeps no cookies.

    The Backend API needs no cookie back; a stock client runs each response's headers
    through ``http.cookiejar`` (about 50 µs a call here, a tenth of a local ``get``) and
    would then send whatever a proxy or CDN set on the way to every later call.
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("the clerk-sessions HTTP client keeps no cookies")


def build_client(
    *,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The SDK's own client: every call carries ``headers`` and ``timeout``.

    With ``transport`` (the fake's, a mock), requests go there and only the cookie jar
    differs from a stock client: the pool and backend are the transport's business.
    """
    # 1. No cookie jar.
    client = _CookielessClient(headers=headers, timeout=timeout, transport=transport, limits=LIMITS)
    if transport is None:
        # 2 and 3. httpx builds its default transport first (so the proxy environment
        # variables still mount their own transports); only the pool under it is swapped.
        backend = default_backend() if FAST_PATHS else None
        # With our backend, no anyio either in the pool's locks (`_pool_primitives`).
        use_reclaiming_pool(
            client, LIMITS, network_backend=backend, asyncio_primitives=backend is not None
        )
    return client
