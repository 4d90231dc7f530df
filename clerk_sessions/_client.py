"""`AsyncClerk`: the one real implementation. The sync `Clerk` is generated from it."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import sys
import warnings
from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from clerk_sessions import _decode
from clerk_sessions._config import (
    DEFAULT_API_VERSION,
    DEFAULT_JWKS_CACHE_TTL_S,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RETRY_CONFIG,
    DEFAULT_SERVER_URL,
    UNSET,
    BackoffStrategy,
    RetryConfig,
    Unset,
)
from clerk_sessions._errors import ConfigurationError, TokenVerificationError
from clerk_sessions._logging import configure_logging_from_env
from clerk_sessions._ratelimit import RateLimit, SharedLimiter
from clerk_sessions._resources.sessions import AsyncSessions
from clerk_sessions._transport import (
    Transport,
    check_http_headers,
    check_server_url,
    check_timeout_ms,
)

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
    checked = check_server_url(url)
    host = httpx.URL(checked).host
    if over_network and checked.startswith("http://") and not _is_loopback(host):
        warnings.warn(
            f"server_url {url!r} is plain http:// to a host that is not this machine: "
            "the secret key would travel in clear text with every request (use https://)",
            UserWarning,
            stacklevel=3,
        )
    return checked


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


def _check_retry_config(retry_config: object) -> None:
    if retry_config is not None and not isinstance(retry_config, RetryConfig):
        raise ConfigurationError(
            f"retry_config must be a RetryConfig or None, got {type(retry_config).__name__}"
        )


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


def _limiters(
    rate_limit: RateLimit | RedisRateLimit | None, secret_key: str
) -> tuple[RateLimit | None, SharedLimiter | None]:
    """The in-process limiter, or the shared one bound to the instance's key."""
    redis = _redis_module(rate_limit)
    if redis is None:
        return rate_limit, None  # type: ignore[return-value]
    # A shared quota belongs to the instance: the limiter is bound to the key.
    shared: SharedLimiter = redis.RedisRateLimit._bind(rate_limit, secret_key)
    return None, shared


def _http_client(http_client: object) -> httpx.AsyncClient | None:
    if http_client is None or isinstance(http_client, httpx.AsyncClient):
        return http_client
    if isinstance(http_client, httpx.Client):
        raise TypeError(
            "http_client must be an httpx.AsyncClient: both Clerk and AsyncClerk run on "
            "the async core (Clerk runs it on its own event loop thread), so a sync "
            "httpx.Client cannot carry their requests; build the same client with "
            "httpx.AsyncClient(...)"
        )
    raise TypeError(f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}")


def _authorized_parties(parties: Sequence[str] | None) -> frozenset[str] | None:
    if parties is None:
        text = os.environ.get("CLERK_AUTHORIZED_PARTIES", "")
        found = [part.strip() for part in text.split(",") if part.strip()]
        return frozenset(found) if found else None
    if isinstance(parties, str):
        # A str is a Sequence[str] of characters: "https://a.com" would match "h".
        raise TypeError("authorized_parties must be a list of origins, not a str")
    checked = list(parties)
    if not all(isinstance(party, str) for party in checked):
        raise TypeError("authorized_parties must hold only strings (origins)")
    return frozenset(checked)


def _jwt_key(jwt_key: str | None) -> str | None:
    key = jwt_key if jwt_key is not None else os.environ.get("CLERK_JWT_KEY") or None
    if key is None:
        return None
    if not isinstance(key, str):
        raise ConfigurationError(f"jwt_key must be a PEM string, got {type(key).__name__}")
    from clerk_sessions._verification import load_pem

    try:
        load_pem(key)
    except ImportError:
        # The key is only needed by verify_token, which says how to install the extra.
        pass
    except TokenVerificationError as exc:
        source = "jwt_key" if jwt_key is not None else "CLERK_JWT_KEY"
        raise ConfigurationError(
            f"{source} is not usable: {exc} (copy the PEM public key from the Clerk "
            "Dashboard, API Keys > Show JWT public key)"
        ) from None
    return key


def _jwks_cache_ttl_s(ttl: float) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < math.inf:
        raise ConfigurationError(f"jwks_cache_ttl_s must be a positive number, got {ttl!r}")
    return float(ttl)


class _Auth:
    """Networkless verification settings and the JWKS cache, shared by a client and
    every client derived from it (`AsyncClerk.with_options`)."""

    def __init__(
        self,
        transport: Transport,
        *,
        jwt_key: str | None,
        authorized_parties: frozenset[str] | None,
        jwks_cache_ttl_s: float,
    ) -> None:
        self._transport = transport
        self.jwt_key = jwt_key
        self.authorized_parties = authorized_parties
        self.jwks_cache_ttl_s = jwks_cache_ttl_s
        self._verifier: TokenVerifier | None = None

    async def fetch_jwks(self) -> Mapping[str, Any]:
        """``GET /jwks``: the instance's public keys.

        At most two attempts within `_JWKS_DEADLINE_S` in all (the verifier keeps the
        last good keys when it fails). Clerk does not rate-limit ``/jwks``, so neither
        does the client: a bulk job at full quota never delays a key refresh."""
        transport = self._transport
        data: Mapping[str, Any] = await transport.request(
            "GET",
            "/jwks",
            _decode.loads,
            replay_safe=True,
            retries=None if transport.policy(UNSET) is None else _JWKS_RETRY,
            deadline_s=_JWKS_DEADLINE_S,
            rate_limited=False,
        )
        return data

    def verifier(self) -> TokenVerifier:
        if self._verifier is None:
            from clerk_sessions._verification import TokenVerifier

            self._verifier = TokenVerifier(self.fetch_jwks, ttl_s=self.jwks_cache_ttl_s)
        return self._verifier


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
    :param http_client: your own ``httpx.AsyncClient`` (not closed by this client); a
        sync ``httpx.Client`` is a `TypeError`.
    :param api_version: sent as the ``Clerk-API-Version`` header.
    :param jwt_key: the instance's PEM public key, for networkless verification without
        ``/jwks``; default: env ``CLERK_JWT_KEY``.
    :param authorized_parties: the origins accepted in a token's ``azp``; default: env
        ``CLERK_AUTHORIZED_PARTIES`` (comma-separated), else any.
    :param debug_logger: a `logging.Logger` that also gets every request's DEBUG record
        (the official SDK's name; the records always go to the ``clerk_sessions`` logger).
    :param jwks_cache_ttl_s: how long keys fetched from ``/jwks`` are trusted (seconds).
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
        jwt_key: str | None = None,
        authorized_parties: Sequence[str] | None = None,
        debug_logger: logging.Logger | None = None,
        jwks_cache_ttl_s: float = DEFAULT_JWKS_CACHE_TTL_S,
        transport: httpx.AsyncBaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        configure_logging_from_env()
        _check_retry_config(retry_config)
        _redis_module(rate_limit)
        http_client = _http_client(http_client)
        if http_client is not None and transport is not None:
            raise ConfigurationError("pass either http_client or transport, not both")
        if not isinstance(api_version, str) or not api_version:
            raise ConfigurationError(f"api_version must be a non-empty string, got {api_version!r}")
        if debug_logger is not None and not isinstance(debug_logger, logging.Logger):
            raise TypeError(
                f"debug_logger must be a logging.Logger, got {type(debug_logger).__name__}"
            )
        # An in-process transport (the testing fake, httpx.MockTransport) sends nothing
        # over a network, so a plain http:// URL exposes nothing there.
        over_network = isinstance(
            transport if http_client is None else getattr(http_client, "_transport", None),
            (httpx.AsyncHTTPTransport, type(None)),
        )
        self.server_url = _server_url(server_url, over_network=over_network)
        self.api_version = api_version
        self._secret_key = _secret_key(bearer_auth)
        local_limit, shared_limit = _limiters(rate_limit, self._secret_key)
        self._transport = Transport(
            secret_key=self._secret_key,
            server_url=self.server_url,
            api_version=api_version,
            timeout_ms=check_timeout_ms(timeout_ms),
            retry_config=retry_config,
            rate_limit=local_limit,
            shared_limit=shared_limit,
            http_client=http_client,
            transport=transport,
            max_response_bytes=_max_response_bytes(max_response_bytes),
            debug_logger=debug_logger,
        )
        self.sessions = AsyncSessions(self._transport)
        self._auth = _Auth(
            self._transport,
            jwt_key=_jwt_key(jwt_key),
            authorized_parties=_authorized_parties(authorized_parties),
            jwks_cache_ttl_s=_jwks_cache_ttl_s(jwks_cache_ttl_s),
        )

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
        """Close the connection pool (unless it belongs to your own ``http_client``).

        A client made by `with_options` closes nothing: the pool is its parent's.
        """
        await self._transport.aclose()

    def with_options(
        self,
        *,
        timeout_ms: int | None = None,
        retry_config: RetryConfig | Unset | None = UNSET,
        rate_limit: RateLimit | RedisRateLimit | Unset | None = UNSET,
        http_headers: Mapping[str, str] | None = None,
    ) -> AsyncClerk:
        """A client of the same kind whose calls use these settings, sharing this
        client's connection pool and JWKS cache.

        ``timeout_ms`` (None: this client's), ``retry_config`` and ``rate_limit`` (left
        out: this client's; None: none), and ``http_headers`` added to every request
        (on top of this client's; the reserved ones raise `ValueError`). Cheap: nothing
        is opened. Closing this client closes the pool under the derived one; closing
        the derived one closes nothing.
        """
        if retry_config is not UNSET:
            _check_retry_config(retry_config)
        local_limit: RateLimit | Unset | None = UNSET
        shared_limit: SharedLimiter | Unset | None = UNSET
        if rate_limit is not UNSET:
            local_limit, shared_limit = _limiters(rate_limit, self._secret_key)
        derived = object.__new__(type(self))
        derived.server_url = self.server_url
        derived.api_version = self.api_version
        derived._secret_key = self._secret_key
        derived._transport = self._transport.derive(
            timeout_ms=UNSET if timeout_ms is None else check_timeout_ms(timeout_ms),
            retry_config=retry_config,
            rate_limit=local_limit,
            shared_limit=shared_limit,
            http_headers=check_http_headers(http_headers),
        )
        derived.sessions = AsyncSessions(derived._transport)
        derived._auth = self._auth
        return derived

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
        at all; default: the client's ``jwt_key``, else env ``CLERK_JWT_KEY``) or the
        instance's JWKS (fetched once and cached for ``jwks_cache_ttl_s``; refetched, at
        most once every 2 s, when a token names an unknown key), then ``exp``, ``nbf``
        and ``iat`` with ``leeway_s``, ``azp`` against ``authorized_parties`` (default:
        the client's), and that ``sub`` and ``sid`` are present. A session whose ``sts``
        claim is ``pending`` (tasks left to do) fails with reason ``session_pending``
        unless ``accept_pending=True``. Raises `TokenVerificationError` with a ``reason``
        code. Needs the ``jwt`` extra.
        """
        auth = self._auth
        return await auth.verifier().verify(
            token,
            authorized_parties=(
                auth.authorized_parties if authorized_parties is None else authorized_parties
            ),
            leeway_s=leeway_s,
            jwt_key=auth.jwt_key if jwt_key is None else jwt_key,
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
        or a plain header mapping. ``authorized_parties`` and ``jwt_key`` default to the
        client's, as for `verify_token`. Never raises for a bad token: the returned
        `RequestState` says whether the caller is signed in, and if not, why.
        """
        auth = self._auth
        return await auth.verifier().authenticate(
            request,
            authorized_parties=(
                auth.authorized_parties if authorized_parties is None else authorized_parties
            ),
            leeway_s=leeway_s,
            jwt_key=auth.jwt_key if jwt_key is None else jwt_key,
            accept_pending=accept_pending,
        )
