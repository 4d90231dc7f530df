"""`AsyncClerk`: the one real implementation. The sync `Clerk` is generated from it."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from clerk_sessions import _options
from clerk_sessions._codec import decode
from clerk_sessions._config import (
    DEFAULT_API_VERSION,
    DEFAULT_JWKS_CACHE_TTL_S,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_RETRY_CONFIG,
    UNSET,
    BackoffStrategy,
    RetryConfig,
    Unset,
)
from clerk_sessions._errors import ConfigurationError
from clerk_sessions._http.engine import HTTPX2
from clerk_sessions._http.transport import Transport
from clerk_sessions._logging import configure_logging_from_env
from clerk_sessions._ratelimit import RateLimit, SharedLimiter
from clerk_sessions._resources.sessions import AsyncSessions
from clerk_sessions._telemetry import Operation

if TYPE_CHECKING:
    import httpx
    import httpx2

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
# A fetch of the keys is a span of its own (a child of whatever verifies the token);
# verification itself, networkless and on every authenticated request, is not traced.
_JWKS = Operation("jwks", "GET", "/jwks", span_name="clerk.jwks")


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
            decode.loads,
            replay_safe=True,
            retries=None if transport.policy(UNSET) is None else _JWKS_RETRY,
            deadline_s=_JWKS_DEADLINE_S,
            rate_limited=False,
            operation=_JWKS,
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
    :param http_client: your own ``httpx2.AsyncClient``, or an ``httpx.AsyncClient``
        (the legacy engine), used as it is and not closed by this client; a sync
        ``Client`` of either is a `TypeError`.
    :param api_version: sent as the ``Clerk-API-Version`` header.
    :param jwt_key: the instance's PEM public key, for networkless verification without
        ``/jwks``; default: env ``CLERK_JWT_KEY``.
    :param authorized_parties: the origins accepted in a token's ``azp``; default: env
        ``CLERK_AUTHORIZED_PARTIES`` (comma-separated), else any.
    :param debug_logger: a `logging.Logger` that also gets every request's DEBUG record
        (the official SDK's name; the records always go to the ``clerk_sessions`` logger).
    :param jwks_cache_ttl_s: how long keys fetched from ``/jwks`` are trusted (seconds).
    :param transport: a transport for the client this SDK creates (for example
        ``httpx2.ASGITransport`` or ``httpx2.MockTransport`` in tests); an httpx
        transport makes that client an ``httpx.AsyncClient``.
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
        http_client: httpx2.AsyncClient | httpx.AsyncClient | None = None,
        api_version: str = DEFAULT_API_VERSION,
        jwt_key: str | None = None,
        authorized_parties: Sequence[str] | None = None,
        debug_logger: logging.Logger | None = None,
        jwks_cache_ttl_s: float = DEFAULT_JWKS_CACHE_TTL_S,
        transport: httpx2.AsyncBaseTransport | httpx.AsyncBaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        configure_logging_from_env()
        _options.check_retry_config(retry_config)
        engine = _options.engine_for(http_client, transport) or HTTPX2
        if not isinstance(api_version, str) or not api_version:
            raise ConfigurationError(f"api_version must be a non-empty string, got {api_version!r}")
        if debug_logger is not None and not isinstance(debug_logger, logging.Logger):
            raise TypeError(
                f"debug_logger must be a logging.Logger, got {type(debug_logger).__name__}"
            )
        # An in-process transport (the testing fake, a MockTransport) sends nothing over
        # a network, so a plain http:// URL exposes nothing there.
        over_network = transport is None or isinstance(transport, engine.module.AsyncHTTPTransport)
        self.server_url = _options.server_url(server_url, over_network=over_network)
        self.api_version = api_version
        self._secret_key = _options.secret_key(bearer_auth)
        local_limit, shared_limit = _options.limiters(rate_limit, self._secret_key)
        self._transport = Transport(
            secret_key=self._secret_key,
            server_url=self.server_url,
            api_version=api_version,
            timeout_ms=_options.check_timeout_ms(timeout_ms),
            retry_config=retry_config,
            rate_limit=local_limit,
            shared_limit=shared_limit,
            http_client=http_client,
            transport=transport,
            engine=engine,
            max_response_bytes=_options.max_response_bytes(max_response_bytes),
            debug_logger=debug_logger,
        )
        self.sessions = AsyncSessions(self._transport)
        self._auth = _Auth(
            self._transport,
            jwt_key=_options.jwt_key(jwt_key),
            authorized_parties=_options.authorized_parties(authorized_parties),
            jwks_cache_ttl_s=_options.jwks_cache_ttl_s(jwks_cache_ttl_s),
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
            _options.check_retry_config(retry_config)
        local_limit: RateLimit | Unset | None = UNSET
        shared_limit: SharedLimiter | Unset | None = UNSET
        if rate_limit is not UNSET:
            local_limit, shared_limit = _options.limiters(rate_limit, self._secret_key)
        derived = object.__new__(type(self))
        derived.server_url = self.server_url
        derived.api_version = self.api_version
        derived._secret_key = self._secret_key
        derived._transport = self._transport.derive(
            timeout_ms=UNSET if timeout_ms is None else _options.check_timeout_ms(timeout_ms),
            retry_config=retry_config,
            rate_limit=local_limit,
            shared_limit=shared_limit,
            http_headers=_options.check_http_headers(http_headers),
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

        Takes a Starlette/FastAPI request, a Django ``HttpRequest``, an
        ``httpx2.Request`` (or ``httpx.Request``) or a plain header mapping.
        ``authorized_parties`` and ``jwt_key`` default to the
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
