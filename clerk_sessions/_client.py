"""`AsyncClerk`: the one real implementation. The sync `Clerk` is generated from it."""

from __future__ import annotations

import ipaddress
import os
import sys
import warnings
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from clerk_sessions import _serde
from clerk_sessions._config import (
    DEFAULT_API_VERSION,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RETRY_CONFIG,
    DEFAULT_SERVER_URL,
    UNSET,
    BackoffStrategy,
    RetryConfig,
)
from clerk_sessions._errors import ConfigurationError
from clerk_sessions._ratelimit import RateLimit, SharedLimiter
from clerk_sessions._resources.sessions import AsyncSessions
from clerk_sessions._transport import Transport

if TYPE_CHECKING:
    from clerk_sessions._claims import RequestState, SessionClaims
    from clerk_sessions._verification import TokenVerifier
    from clerk_sessions.redis import RedisRateLimit

__all__ = ["AsyncClerk"]

# A /jwks fetch sits in front of every cold authentication: it gets a short deadline of
# its own (both attempts together) and one quick retry, so a JWKS outage fails requests
# fast instead of holding each one for the full retry policy.
_JWKS_DEADLINE_S = 5.0
_JWKS_RETRY = RetryConfig(
    backoff=BackoffStrategy(
        initial_interval_ms=200,
        max_interval_ms=200,
        exponent=1.0,
        max_elapsed_time_ms=int(_JWKS_DEADLINE_S * 1000),
    ),
    max_attempts=2,
    max_retry_after_ms=1000,
)


def _secret_key(bearer_auth: str | None) -> str:
    key = bearer_auth if bearer_auth is not None else os.environ.get("CLERK_SECRET_KEY")
    if not key:
        raise ConfigurationError(
            "no Clerk secret key: pass bearer_auth=... or set the CLERK_SECRET_KEY "
            "environment variable (find the key under API Keys in the Clerk Dashboard)"
        )
    if not isinstance(key, str):
        raise ConfigurationError(f"bearer_auth must be a string, got {type(key).__name__}")
    if key != key.strip() or any(ch in key for ch in "\r\n"):
        raise ConfigurationError("the secret key has whitespace around or inside it")
    if not all("!" <= ch <= "~" for ch in key):
        # Refused here, before any header is built: httpx's error for such a header
        # would quote it, key and all. The key itself is never shown.
        raise ConfigurationError(
            "the secret key holds characters outside printable ASCII (a control "
            "character, a non-ASCII letter or a space): copy it again from API Keys in "
            "the Clerk Dashboard"
        )
    return key


def _server_url(server_url: str | None, *, over_network: bool) -> str:
    url = server_url or os.environ.get("CLERK_API_URL") or DEFAULT_SERVER_URL
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"server_url is not a valid URL: {url!r} ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"server_url must be an absolute http(s) URL such as {DEFAULT_SERVER_URL!r}, "
            f"got {url!r}"
        )
    if over_network and parsed.scheme == "http" and not _is_loopback(parsed.host):
        warnings.warn(
            f"server_url {url!r} is plain http:// to a host that is not this machine: "
            "the secret key would travel in clear text with every request (use https://)",
            UserWarning,
            stacklevel=3,
        )
    return url


def _redis_module(rate_limit: object) -> Any:
    """``clerk_sessions.redis`` when ``rate_limit`` is one of its limiters, else None."""
    if rate_limit is None or isinstance(rate_limit, RateLimit):
        return None
    # An object cannot be a RedisRateLimit unless its module was imported: core never
    # imports the Redis client for users who do not use it.
    redis = sys.modules.get("clerk_sessions.redis")
    if redis is None or not isinstance(rate_limit, redis.RedisRateLimit):
        raise ConfigurationError(
            "rate_limit must be a RateLimit, a clerk_sessions.redis.RedisRateLimit or None, "
            f"got {type(rate_limit).__name__}"
        )
    return redis


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _max_response_bytes(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"max_response_bytes must be a positive integer, got {value!r}")
    return value


def _timeout_ms(timeout_ms: int | None) -> int | None:
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0:
        raise ConfigurationError(f"timeout_ms must be a positive integer, got {timeout_ms!r}")
    return timeout_ms


class AsyncClerk:
    """The async client for the sessions part of Clerk's Backend API.

    One client per process is the intended use: it holds a connection pool, and is safe
    to share between tasks. Use it as ``async with AsyncClerk() as clerk:`` or call
    ``await clerk.aclose()`` when done.

    :param bearer_auth: the instance's secret key; default: env ``CLERK_SECRET_KEY``.
    :param server_url: default: env ``CLERK_API_URL``, else ``https://api.clerk.com/v1``.
    :param timeout_ms: per-request timeout in milliseconds (default 30 s).
    :param retry_config: the retry policy; None disables retries.
    :param rate_limit: a client-side limiter shared by every call of this client: a
        `RateLimit` (this process), or a `clerk_sessions.redis.RedisRateLimit` (every
        process and host on one Redis).
    :param http_client: your own ``httpx.AsyncClient`` (not closed by this client).
    :param api_version: sent as the ``Clerk-API-Version`` header.
    :param transport: an httpx transport for the client this SDK creates (for example
        ``httpx.ASGITransport`` or ``httpx.MockTransport`` in tests).
    :param max_response_bytes: no answer is read past this many bytes (counted after
        decompression); a longer one raises `SDKError`. Default 10 MiB.
    """

    def __init__(
        self,
        bearer_auth: str | None = None,
        *,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        retry_config: RetryConfig | None = DEFAULT_RETRY_CONFIG,
        rate_limit: RateLimit | RedisRateLimit | None = None,
        http_client: httpx.AsyncClient | None = None,
        api_version: str = DEFAULT_API_VERSION,
        transport: httpx.AsyncBaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        if retry_config is not None and not isinstance(retry_config, RetryConfig):
            raise ConfigurationError(
                f"retry_config must be a RetryConfig or None, got {type(retry_config).__name__}"
            )
        redis = _redis_module(rate_limit)
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass either http_client or transport, not both")
        if not isinstance(api_version, str) or not api_version:
            raise ConfigurationError(f"api_version must be a non-empty string, got {api_version!r}")
        # An in-process transport (the testing fake, httpx.MockTransport) sends nothing
        # over a network, so a plain http:// URL exposes nothing there.
        over_network = isinstance(
            transport if http_client is None else getattr(http_client, "_transport", None),
            (httpx.AsyncHTTPTransport, type(None)),
        )
        self.server_url = _server_url(server_url, over_network=over_network).rstrip("/")
        self.api_version = api_version
        secret_key = _secret_key(bearer_auth)
        # A shared quota belongs to the instance: the limiter is bound to the key.
        shared_limit: SharedLimiter | None = (
            None if redis is None else redis.RedisRateLimit._bind(rate_limit, secret_key)
        )
        self._transport = Transport(
            secret_key=secret_key,
            server_url=self.server_url,
            api_version=api_version,
            timeout_ms=_timeout_ms(timeout_ms),
            retry_config=retry_config,
            rate_limit=rate_limit if redis is None else None,  # type: ignore[arg-type]
            shared_limit=shared_limit,
            http_client=http_client,
            transport=transport,
            max_response_bytes=_max_response_bytes(max_response_bytes),
        )
        self.sessions = AsyncSessions(self._transport)
        self._verifier: TokenVerifier | None = None

    def __repr__(self) -> str:
        # Never the secret key.
        return f"{type(self).__name__}(server_url={self.server_url!r})"

    async def __aenter__(self) -> AsyncClerk:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it belongs to your own ``http_client``)."""
        await self._transport.aclose()

    async def _fetch_jwks(self) -> Mapping[str, Any]:
        """``GET /jwks``: the instance's public keys, for networkless verification.

        At most two attempts within `_JWKS_DEADLINE_S` in all (the verifier keeps the
        last good keys when it fails)."""
        transport = self._transport
        data: Mapping[str, Any] = await transport.request(
            "GET",
            transport.url("/jwks"),
            _serde.loads,
            replay_safe=True,
            retries=None if transport.policy(UNSET) is None else _JWKS_RETRY,
            deadline_s=_JWKS_DEADLINE_S,
        )
        return data

    def _token_verifier(self) -> TokenVerifier:
        if self._verifier is None:
            from clerk_sessions._verification import TokenVerifier

            self._verifier = TokenVerifier(self._fetch_jwks)
        return self._verifier

    async def verify_token(
        self,
        token: str,
        *,
        authorized_parties: Collection[str] | None = None,
        leeway_s: float = 5,
        jwt_key: str | None = None,
        accept_pending: bool = False,
    ) -> SessionClaims:
        """Verify a session token without calling Clerk (networkless verification).

        Checks the RS256 signature against ``jwt_key`` (a PEM public key: then no request
        at all) or the instance's JWKS (fetched once and cached; refetched, at most once
        every 2 s, when a token names an unknown key), then ``exp``, ``nbf`` and ``iat``
        with ``leeway_s``, ``azp`` against ``authorized_parties``, and that ``sub`` and
        ``sid`` are present. A session whose ``sts`` claim is ``pending`` (tasks left to
        do) fails with reason ``session_pending`` unless ``accept_pending=True``.
        Raises `TokenVerificationError` with a ``reason`` code. Needs the ``jwt`` extra.
        """
        return await self._token_verifier().verify(
            token,
            authorized_parties=authorized_parties,
            leeway_s=leeway_s,
            jwt_key=jwt_key,
            accept_pending=accept_pending,
        )

    async def authenticate_request(
        self,
        request: object,
        *,
        authorized_parties: Collection[str] | None = None,
        leeway_s: float = 5,
        jwt_key: str | None = None,
        accept_pending: bool = False,
    ) -> RequestState:
        """Authenticate an incoming request from its ``Authorization: Bearer`` header or
        ``__session`` cookie.

        Takes a Starlette/FastAPI request, a Django ``HttpRequest``, an ``httpx.Request``
        or a plain header mapping. Never raises for a bad token: the returned
        `RequestState` says whether the caller is signed in, and if not, why.
        """
        return await self._token_verifier().authenticate(
            request,
            authorized_parties=authorized_parties,
            leeway_s=leeway_s,
            jwt_key=jwt_key,
            accept_pending=accept_pending,
        )
