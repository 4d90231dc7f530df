"""One request to the Backend API: rate limit, send, map the answer, retry.

This is the hot path of every operation. Everything that does not change between calls
(URL prefix, headers, the retry policy) is built once in ``__init__``; a call builds only
its URL and, for a POST, its body.

What a hostile or broken server can send is bounded here, for every path (sessions,
errors, ``/jwks``): each attempt runs under one deadline from connect to the last byte
(httpx's timeouts are per operation, so a server dripping a byte a second never trips
them), and a body is read as a stream, decompressed here with a bounded output, and
abandoned (its connection closed) once it passes ``max_response_bytes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import random
import socket
import ssl
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import anyio
import httpx
import sniffio

from clerk_sessions._config import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_MS,
    FAST_PATHS,
    UNSET,
    RetryConfig,
    Unset,
)
from clerk_sessions._errors import (
    AnswerMismatch,
    APIConnectionError,
    APITimeoutError,
    SDKError,
    error_from_response,
)
from clerk_sessions._httpclient import build_client
from clerk_sessions._netbackend import is_own_stream
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
# Without a retry policy, a 429 pauses the limiter at most as long as the default
# policy would wait for it.
_DEFAULT_PAUSE_CAP_S = RetryConfig().max_retry_after_ms / 1000
# Only what can be decompressed with a bounded output is asked for: httpx would inflate
# a whole 64 KiB read at once (a gzip bomb turns that into 64 MB), and would stack
# decoders for "gzip, gzip".
_ACCEPT_ENCODING = "gzip, deflate"
# zlib's header detection: a gzip or a zlib stream (what servers send as "deflate").
_INFLATE_WBITS = zlib.MAX_WBITS | 32
# How much of a too-large answer is kept on the error, to show what it was.
_EXCERPT_BYTES = 1024
# asyncio's own timeout is a single timer; anyio's cancel scope costs twice as much per
# call, and is needed only on trio (and on 3.10, which lacks asyncio.timeout). A fast
# path, so CLERK_SESSIONS_NO_FAST_PATHS turns it off.
_asyncio_timeout: Callable[[float], AbstractAsyncContextManager[None]] | None
if sys.version_info >= (3, 11) and FAST_PATHS:
    _asyncio_timeout = asyncio.timeout
else:  # pragma: no cover - the coverage run is on 3.11
    _asyncio_timeout = None


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


def _too_large(limit: int, response: httpx.Response, excerpt: bytes) -> SDKError:
    return SDKError(
        f"the answer is larger than max_response_bytes={limit:,} bytes (after "
        "decompression) and was abandoned unread; Clerk's largest answers are well under "
        "1 MiB, so a proxy or server on the way probably sent something else (raise "
        "max_response_bytes only if this answer is legitimate)",
        status_code=response.status_code,
        headers=response.headers,
        body=excerpt[:_EXCERPT_BYTES],
    )


async def _read_body(response: httpx.Response, limit: int) -> bytes:
    """The whole (decoded) body, or `SDKError` as soon as it passes ``limit`` bytes.

    Raw bytes are read from the stream and inflated here with ``max_length``, so no read
    ever produces more than what is left of the limit.
    """
    if response.is_stream_consumed:
        # Built in memory, not read from a connection (httpx.MockTransport and the
        # like hand over responses that hold their decoded content already).
        if len(response.content) > limit:
            raise _too_large(limit, response, response.content)
        return response.content
    headers = response.headers
    encoding = headers.get("content-encoding", "identity").strip().lower()
    chunks: list[bytes] = []
    size = 0
    if encoding == "identity":
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(limit, response, b"")
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, response, chunks[0] if chunks else chunk)
            chunks.append(chunk)
        return b"".join(chunks)
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise SDKError(
            f"the answer came with Content-Encoding {encoding!r}, which was not asked for "
            f"(Accept-Encoding: {_ACCEPT_ENCODING})",
            status_code=response.status_code,
            headers=headers,
            body=b"",
        )
    inflate = zlib.decompressobj(_INFLATE_WBITS)
    try:
        async for chunk in response.aiter_raw():
            # One byte over the limit is enough to know it is too large.
            data = inflate.decompress(chunk, limit - size + 1)
            size += len(data)
            if size > limit:
                raise _too_large(limit, response, chunks[0] if chunks else data)
            chunks.append(data)
        # All input was consumed below max_length, so nothing is left to inflate: this
        # only checks that the stream is complete.
        chunks.append(inflate.flush())
        if not inflate.eof:
            raise zlib.error("the compressed stream ends early")
    except zlib.error as exc:
        raise SDKError(
            f"the answer's {encoding} encoding is corrupt ({exc})",
            status_code=response.status_code,
            headers=headers,
            body=b"".join(chunks),
        ) from None
    return b"".join(chunks)


async def _discard_connection(response: httpx.Response) -> None:
    """Close the connection that carried ``response``, so the pool never reuses it.

    Used when an answer shows the connection is out of step with its requests. The
    connection sits idle in the pool by now; it must look to the pool's next check like
    one the server closed. Our asyncio backend's streams close at once and say so.
    Others (httpcore's anyio and trio streams) ask the kernel whether an idle socket is
    readable, and trio's refuses to look at a closed one: shutting the socket down makes
    it read as closed for both, and the pool then closes it properly.
    """
    stream = response.extensions.get("network_stream")
    if stream is None:
        return
    if is_own_stream(stream):
        await stream.aclose()
        return
    sock = stream.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_url = server_url.rstrip("/")
        self.max_response_bytes = max_response_bytes
        # The whole attempt, connect to last byte; httpx's timeouts bound each operation.
        self.deadline_s = (timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
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
            "Accept-Encoding": _ACCEPT_ENCODING,
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
        deadline_s: float | None = None,
    ) -> T:
        """Send one logical request (with its retries) and decode a 2XX body.

        ``decode`` may raise `AnswerMismatch`: the answer is not for this request, so the
        connection that carried it is closed and the call raises `SDKError`.
        ``deadline_s`` shortens this request's per-attempt deadline (``/jwks``).
        """
        headers = self._call_headers
        if api_version is not None:
            headers = {**(headers or {}), "Clerk-API-Version": api_version}
        policy = self.policy(retries)
        pause_cap_s = _DEFAULT_PAUSE_CAP_S if policy is None else policy.pause_cap_s
        timeout = self._timeout
        deadline = self.deadline_s
        if deadline_s is not None and deadline_s < deadline:
            deadline = deadline_s
            timeout = httpx.Timeout(deadline_s)

        async def attempt(budget_s: float | None = None) -> T:
            # A retry never runs past the policy's budget (max_elapsed_time_ms).
            limit = deadline if budget_s is None or budget_s > deadline else budget_s
            return await self._attempt(
                method, url, decode, headers, json_body, timeout, limit, pause_cap_s
            )

        if policy is None:
            return await attempt()
        return await policy.run(attempt, replay_safe=replay_safe, sleep=self.sleep)

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        json_body: Any,
        op_timeout: httpx.Timeout | Any,
    ) -> tuple[httpx.Response, bytes]:
        client = self.client
        request = client.build_request(
            method, url, json=json_body, headers=headers, timeout=op_timeout
        )
        response = await client.send(request, stream=True)
        try:
            body = await _read_body(response, self.max_response_bytes)
        finally:
            # A body abandoned before its end closes the connection instead of
            # returning it to the pool; after a complete read this does nothing.
            await response.aclose()
        return response, body

    async def _attempt(
        self,
        method: str,
        url: str,
        decode: Callable[[bytes], T],
        headers: dict[str, str] | None,
        json_body: Any,
        op_timeout: httpx.Timeout | Any,
        deadline_s: float,
        pause_cap_s: float,
    ) -> T:
        rate_limit = self.rate_limit
        started_at = None if rate_limit is None else await rate_limit.acquire(self.sleep)
        shared = self.shared_limit
        token = None if shared is None else await shared.acquire(self.sleep)
        try:
            if _asyncio_timeout is not None and sniffio.current_async_library() == "asyncio":
                async with _asyncio_timeout(deadline_s):
                    response, body = await self._exchange(
                        method, url, headers, json_body, op_timeout
                    )
            else:
                with anyio.fail_after(deadline_s):
                    response, body = await self._exchange(
                        method, url, headers, json_body, op_timeout
                    )
        except httpx.TimeoutException as exc:
            raise APITimeoutError(
                f"{method} {url} timed out ({type(exc).__name__})",
                request_sent=not isinstance(exc, _NOT_SENT),
            ) from exc
        except TimeoutError as exc:
            raise APITimeoutError(
                f"{method} {url} did not finish within {deadline_s:g} s (timeout_ms bounds "
                "each attempt as a whole, from connect to the last byte)"
            ) from exc
        except httpx.LocalProtocolError:
            # h11's message quotes the offending header, which may be the Authorization
            # one: say what happened without it, and do not try again (it cannot help).
            raise APIConnectionError(
                f"{method} {url} could not be sent: a header value holds characters that "
                "HTTP does not allow (LocalProtocolError)",
                request_sent=False,
                retryable=False,
            ) from None
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
                    body=body,
                )
            try:
                return decode(body)
            except AnswerMismatch as exc:
                await _discard_connection(response)
                raise SDKError(
                    str(exc), status_code=status, headers=response.headers, body=body
                ) from None
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
        if status == 429:
            # A day-long Retry-After must not hold every later call for a day: the call
            # that got it raises at once (see RetryPolicy), the others wait at most this.
            pause = _DEFAULT_QUOTA_PAUSE_S if retry_after is None else retry_after
            pause = min(pause, pause_cap_s)
            if rate_limit is not None:
                rate_limit.pause(pause)
            elif shared is not None:
                await shared.pause(pause)
        logger.debug("%s %s -> %d", method, url, status)
        raise error_from_response(status, response.headers, body, retry_after=retry_after)

    async def aclose(self) -> None:
        if self.shared_limit is not None:
            await self.shared_limit.aclose()
        if self.owns_client:
            await self.client.aclose()
