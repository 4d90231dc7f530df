"""One request to the Backend API: rate limit, send, map the answer, retry.

This is the hot path of every operation. Everything that does not change between calls
(URL prefix, headers, the retry policy) is built once in ``__init__``; a call builds only
its URL and, for a POST, its body.
"""

from __future__ import annotations

import logging
import platform
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import anyio
import httpx

from clerk_sessions._config import DEFAULT_TIMEOUT_MS, UNSET, RetryConfig, Unset
from clerk_sessions._errors import (
    APIConnectionError,
    APITimeoutError,
    SDKError,
    error_from_response,
)
from clerk_sessions._httpclient import build_client
from clerk_sessions._ratelimit import RateLimit, SharedLimiter
from clerk_sessions._retry import RetryPolicy, parse_retry_after
from clerk_sessions._version import __version__

__all__ = ["Transport", "path_segment"]

logger = logging.getLogger("clerk_sessions")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]

USER_AGENT = (
    f"clerk-sessions/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"
)
# Errors where the connection was never made: the request cannot have been processed.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# A 429 without a usable Retry-After still pauses the limiter this long.
_DEFAULT_QUOTA_PAUSE_S = 1.0


def path_segment(name: str, value: object) -> str:
    """Percent-encode one path parameter so that no value can reach another path."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value in ("", ".", ".."):
        raise ValueError(f"{name} must be a non-empty id other than '.' and '..', got {value!r}")
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid text: {value!r}") from None


def _reason(exc: BaseException) -> str:
    """What went wrong, from the first exception in the chain that says anything.

    httpx's errors repeat their cause's text on asyncio, but on trio a TLS failure
    arrives as an empty ``ConnectError`` over an empty ``BrokenResourceError``.
    """
    reason = ""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return (
                f"{current} (the server's certificate is not trusted here; if a private CA "
                "or a TLS-inspecting proxy signs it, point SSL_CERT_FILE at that CA's PEM, "
                "or pass an http_client built with verify=...)"
            )
        if not reason:
            reason = str(current)
        current = current.__cause__ or current.__context__
    return reason or "no reason given"


def _query_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


class Transport:
    """Sends requests for one client. Not part of the public API."""

    def __init__(
        self,
        *,
        secret_key: str,
        server_url: str,
        api_version: str,
        timeout_ms: int | None,
        retry_config: RetryConfig | None,
        rate_limit: RateLimit | None,
        shared_limit: SharedLimiter | None = None,
        http_client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.base_url = server_url.rstrip("/")
        self.api_version = api_version
        self.rate_limit = rate_limit
        # A limiter shared over the network (Redis): its calls are awaited, while the
        # in-process one keeps its plain method calls on the hot path.
        self.shared_limit = shared_limit
        headers = {
            "Authorization": f"Bearer {secret_key}",
            "Accept": "application/json",
            "Clerk-API-Version": api_version,
            "User-Agent": USER_AGENT,
        }
        if http_client is None:
            # Our own client carries the headers, so a call passes none of its own.
            timeout = httpx.Timeout((timeout_ms or DEFAULT_TIMEOUT_MS) / 1000)
            self.client: httpx.AsyncClient = build_client(
                headers=headers, timeout=timeout, transport=transport
            )
            self.owns_client = True
            self._call_headers: dict[str, str] | None = None
        else:
            self.client = http_client
            self.owns_client = False
            self._call_headers = headers
        # Our client carries its timeout; a user's client keeps its own unless one is given.
        self._timeout: httpx.Timeout | Any = (
            httpx.Timeout(timeout_ms / 1000)
            if http_client is not None and timeout_ms is not None
            else httpx.USE_CLIENT_DEFAULT
        )
        self.rng = random.Random()
        self.sleep: Sleep = anyio.sleep
        self._default_policy = (
            None if retry_config is None else RetryPolicy(retry_config, rng=self.rng)
        )
        self._policies: dict[RetryConfig, RetryPolicy] = {}

    def policy(self, retries: RetryConfig | Unset | None) -> RetryPolicy | None:
        """The policy for a call: the client's, none, or a per-call override (cached)."""
        if retries is UNSET:
            return self._default_policy
        if retries is None:
            return None
        policy = self._policies.get(retries)
        if policy is None:
            policy = self._policies[retries] = RetryPolicy(retries, rng=self.rng)
        return policy

    def url(self, path: str, query: Mapping[str, object] | None = None) -> str:
        url = self.base_url + path
        if query:
            pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
            if pairs:
                url += "?" + urlencode(pairs)
        return url

    async def request(
        self,
        method: str,
        url: str,
        decode: Callable[[bytes], T],
        *,
        replay_safe: bool,
        retries: RetryConfig | Unset | None,
        json_body: Any = None,
        api_version: str | None = None,
    ) -> T:
        """Send one logical request (with its retries) and decode a 2XX body."""
        headers = self._call_headers
        if api_version is not None:
            headers = {**(headers or {}), "Clerk-API-Version": api_version}

        async def attempt() -> T:
            return await self._attempt(method, url, decode, headers, json_body)

        policy = self.policy(retries)
        if policy is None:
            return await attempt()
        return await policy.run(attempt, replay_safe=replay_safe, sleep=self.sleep)

    async def _attempt(
        self,
        method: str,
        url: str,
        decode: Callable[[bytes], T],
        headers: dict[str, str] | None,
        json_body: Any,
    ) -> T:
        rate_limit = self.rate_limit
        started_at = None if rate_limit is None else await rate_limit.acquire(self.sleep)
        shared = self.shared_limit
        token = None if shared is None else await shared.acquire(self.sleep)
        try:
            response = await self.client.request(
                method, url, json=json_body, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise APITimeoutError(
                f"{method} {url} timed out ({type(exc).__name__})",
                request_sent=not isinstance(exc, _NOT_SENT),
            ) from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(
                f"{method} {url} got no answer: {type(exc).__name__}: {_reason(exc)}",
                request_sent=not isinstance(exc, _NOT_SENT),
            ) from exc
        finally:
            if started_at is not None:
                rate_limit.finished(started_at)  # type: ignore[union-attr]
            elif shared is not None:
                await shared.finished(token)
        status = response.status_code
        if 200 <= status < 300:
            content_type = response.headers.get("content-type", "application/json")
            if "json" not in content_type:
                raise SDKError(
                    f"expected a JSON answer, got content type {content_type!r}",
                    status_code=status,
                    headers=response.headers,
                    body=response.content,
                )
            return decode(response.content)
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
        if status == 429:
            pause = retry_after if retry_after is not None else _DEFAULT_QUOTA_PAUSE_S
            if rate_limit is not None:
                rate_limit.pause(pause)
            elif shared is not None:
                await shared.pause(pause)
        logger.debug("%s %s -> %d", method, url, status)
        raise error_from_response(
            status, response.headers, response.content, retry_after=retry_after
        )

    async def aclose(self) -> None:
        if self.shared_limit is not None:
            await self.shared_limit.aclose()
        if self.owns_client:
            await self.client.aclose()
