"""Every check of a setting: the client's constructor arguments and the per-call options.

Each function takes what the user passed and returns it checked (and normalised), or
raises a typed error that names the setting and says what to do. All of them run before
any I/O, so a bad setting never becomes a network failure (or, in a bulk call, every
item's failure).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import httpx2

from clerk_sessions._config import DEFAULT_SERVER_URL, UNSET, RetryConfig, Unset
from clerk_sessions._errors import ConfigurationError, TokenVerificationError
from clerk_sessions._http.engine import (
    Engine,
    engine_of_client,
    engine_of_transport,
    is_sync_client,
)
from clerk_sessions._ratelimit import RateLimit, SharedLimiter

if TYPE_CHECKING:
    from clerk_sessions.redis import RedisRateLimit

__all__ = [
    "authorized_parties",
    "call_options",
    "check_http_headers",
    "check_retries",
    "check_retry_config",
    "check_server_url",
    "check_timeout_ms",
    "engine_for",
    "jwks_cache_ttl_s",
    "jwt_key",
    "limiters",
    "max_response_bytes",
    "per_call",
    "secret_key",
    "server_url",
]

# ------------------------------------------------------------------ constructor


def secret_key(bearer_auth: str | None) -> str:
    """The instance's secret key, from ``bearer_auth`` or ``CLERK_SECRET_KEY``."""
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
        # Refused here, before any header is built: an HTTP library's error for such a
        # header would quote it, key and all. The key itself is never shown.
        raise ConfigurationError(
            "the secret key holds characters outside printable ASCII (a control "
            "character, a non-ASCII letter or a space): copy it again from API Keys in "
            "the Clerk Dashboard"
        )
    return key


def check_server_url(server_url: str) -> str:
    """An absolute http(s) base URL, returned without a trailing slash."""
    if not isinstance(server_url, str):
        raise ConfigurationError(f"server_url must be a string, got {type(server_url).__name__}")
    try:
        parsed = httpx2.URL(server_url)
    except (httpx2.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"server_url is not a valid URL: {server_url!r} ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            "server_url must be an absolute http(s) URL such as "
            f"'https://api.clerk.com/v1', got {server_url!r}"
        )
    return server_url.rstrip("/")


# Names that never leave the machine: loopback, and the top-level names reserved for
# tests and documentation (RFC 2606, RFC 6761), which resolve nowhere.
_LOCAL_SUFFIXES = (".localhost", ".test", ".example", ".invalid")


def _is_local(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def server_url(server_url: str | None, *, over_network: bool) -> str:
    """The base URL (argument, else ``CLERK_API_URL``, else Clerk's), with one
    `UserWarning` when the key would travel in clear text over a network."""
    url = server_url or os.environ.get("CLERK_API_URL") or DEFAULT_SERVER_URL
    checked = check_server_url(url)
    if over_network and checked.startswith("http://") and not _is_local(httpx2.URL(checked).host):
        warnings.warn(
            f"server_url {url!r} is plain http:// to a host that is not this machine: "
            "the secret key would travel in clear text with every request (use https://)",
            UserWarning,
            stacklevel=3,
        )
    return checked


def max_response_bytes(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"max_response_bytes must be a positive integer, got {value!r}")
    return value


def check_retry_config(retry_config: object) -> None:
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


def limiters(
    rate_limit: RateLimit | RedisRateLimit | None, secret_key: str
) -> tuple[RateLimit | None, SharedLimiter | None]:
    """The in-process limiter, or the shared one bound to the instance's key."""
    redis = _redis_module(rate_limit)
    if redis is None:
        return cast("RateLimit | None", rate_limit), None
    # A shared quota belongs to the instance: the limiter is bound to the key.
    shared: SharedLimiter = redis.RedisRateLimit._bind(rate_limit, secret_key)
    return None, shared


_BOTH_CLIENTS = "an httpx2.AsyncClient or an httpx.AsyncClient"


def engine_for(http_client: object, transport: object) -> Engine | None:
    """The engine of the user's ``http_client`` (or ``transport``), None when neither is
    given; anything else is a `TypeError` naming what is accepted."""
    if http_client is not None:
        if transport is not None:
            raise ConfigurationError("pass either http_client or transport, not both")
        engine = engine_of_client(http_client)
        if engine is not None:
            return engine
        if is_sync_client(http_client):
            raise TypeError(
                f"http_client must be {_BOTH_CLIENTS}: both Clerk and AsyncClerk run on the "
                "async core (Clerk runs it on its own event loop thread), so a sync Client "
                "cannot carry their requests; build the same client as an AsyncClient"
            )
        raise TypeError(f"http_client must be {_BOTH_CLIENTS}, got {type(http_client).__name__}")
    if transport is not None:
        engine = engine_of_transport(transport)
        if engine is None:
            raise TypeError(
                "transport must be an async transport of httpx2 or httpx "
                f"(httpx2.AsyncBaseTransport), got {type(transport).__name__}"
            )
        return engine
    return None


def authorized_parties(parties: Sequence[str] | None) -> frozenset[str] | None:
    """The origins accepted in ``azp`` (argument, else ``CLERK_AUTHORIZED_PARTIES``)."""
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


def jwt_key(key_arg: str | None) -> str | None:
    """The PEM public key (argument, else ``CLERK_JWT_KEY``), checked when PyJWT is there."""
    key = key_arg if key_arg is not None else os.environ.get("CLERK_JWT_KEY") or None
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
        source = "jwt_key" if key_arg is not None else "CLERK_JWT_KEY"
        raise ConfigurationError(
            f"{source} is not usable: {exc} (copy the PEM public key from the Clerk "
            "Dashboard, API Keys > Show JWT public key)"
        ) from None
    return key


def jwks_cache_ttl_s(ttl: float) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < math.inf:
        raise ConfigurationError(f"jwks_cache_ttl_s must be a positive number, got {ttl!r}")
    return float(ttl)


# --------------------------------------------------------------------- per call

# Headers a call may not replace: they carry the key, the API version the decoders were
# written for, the SDK's name (which Clerk's support uses to tell clients apart), and the
# only encodings the SDK can decompress within max_response_bytes.
_RESERVED_HEADERS = {
    "authorization": "Authorization is the secret key: pass bearer_auth= to the client",
    "clerk-api-version": "Clerk-API-Version is set from the client's api_version=",
    "user-agent": "User-Agent names this SDK",
    "accept-encoding": "Accept-Encoding lists what the SDK can decompress within "
    "max_response_bytes",
}
# RFC 9110 5.1 field names: tokens.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Visible ASCII, spaces and tabs: no line breaks (header injection) and nothing an HTTP
# library would have to encode.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


def per_call(
    engine: Engine,
    server_url: str | None,
    timeout_ms: int | None,
    http_headers: Mapping[str, str] | None,
    base: str,
    deadline: float,
    timeout: Any,
    headers: dict[str, str] | None,
) -> tuple[str, float, Any, dict[str, str] | None]:
    """A request's per-call options, each checked, applied to what its client would send
    (`Transport.request`): the server URL ``base``, the attempt's ``deadline`` in seconds
    and the engine's ``timeout``, and the ``headers``."""
    if server_url is not None:
        base = check_server_url(server_url)
    if timeout_ms is not None:
        deadline = cast("int", check_timeout_ms(timeout_ms)) / 1000
        timeout = engine.timeout(deadline)
    extra = check_http_headers(http_headers)
    if extra:
        headers = {**(headers or {}), **extra}
    return base, deadline, timeout, headers


def check_http_headers(http_headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """Per-call (or derived-client) ``http_headers``, checked; a plain dict, or None."""
    if http_headers is None:
        return None
    if not isinstance(http_headers, Mapping):
        raise TypeError(
            f"http_headers must be a mapping of header names to values, "
            f"got {type(http_headers).__name__}"
        )
    checked: dict[str, str] = {}
    for name, value in cast("Mapping[object, object]", http_headers).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(
                f"http_headers must map str to str, got {type(name).__name__}: "
                f"{type(value).__name__}"
            )
        reserved = _RESERVED_HEADERS.get(name.lower())
        if reserved is not None:
            raise ValueError(f"http_headers cannot replace {name!r}: {reserved}")
        if _TOKEN.fullmatch(name) is None:
            raise ValueError(f"http_headers has an invalid header name: {name!r}")
        if _FIELD_VALUE.fullmatch(value) is None:
            # The value is not shown: it may be a credential for a proxy.
            raise ValueError(
                f"the value of header {name!r} has characters a header cannot carry "
                "(line breaks, control characters or non-ASCII text)"
            )
        checked[name] = value
    return checked


def check_timeout_ms(timeout_ms: int | None) -> int | None:
    """A timeout in milliseconds: a positive integer, or None."""
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0:
        raise ConfigurationError(f"timeout_ms must be a positive integer, got {timeout_ms!r}")
    return timeout_ms


def check_retries(retries: object) -> None:
    """A per-call ``retries``: UNSET, None or a `RetryConfig`."""
    if retries is not UNSET and retries is not None and not isinstance(retries, RetryConfig):
        raise TypeError(f"retries must be a RetryConfig or None, got {type(retries).__name__}")


def call_options(
    *,
    retries: RetryConfig | Unset | None,
    server_url: str | None,
    timeout_ms: int | None,
    http_headers: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The per-call options of an operation that sends many requests, checked once
    before the first one (a bad one must not become every item's failure)."""
    check_retries(retries)
    return {
        "retries": retries,
        "server_url": None if server_url is None else check_server_url(server_url),
        "timeout_ms": check_timeout_ms(timeout_ms),
        "http_headers": check_http_headers(http_headers),
    }
