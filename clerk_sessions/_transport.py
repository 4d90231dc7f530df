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
import copy
import logging
import platform
import random
import re
import socket
import ssl
import sys
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar, cast, overload
from urllib.parse import quote, urlencode

import anyio
import httpx
import sniffio

from clerk_sessions import models
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
    ClerkErrors,
    ConfigurationError,
    SDKError,
    error_from_response,
)
from clerk_sessions._httpclient import build_client
from clerk_sessions._netbackend import is_own_stream
from clerk_sessions._ratelimit import RateLimit, SharedLimiter
from clerk_sessions._retry import RetryPolicy, parse_retry_after
from clerk_sessions._version import __version__

__all__ = [
    "Transport",
    "check_http_headers",
    "check_server_url",
    "check_timeout_ms",
    "path_segment",
    "with_query",
]

logger = logging.getLogger("clerk_sessions")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]

USER_AGENT = (
    f"clerk-sessions/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"
)
# Errors where the connection was never made: the request cannot have been processed.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The response header in which Clerk names the request for its support (seen on every
# answer of the live API, errors included).
TRACE_ID_HEADER = "x-clerk-trace-id"
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
# Visible ASCII, spaces and tabs: no line breaks (header injection) and nothing httpx
# would have to encode.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


def check_http_headers(http_headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """Validate per-call ``http_headers`` before any I/O; a plain dict, or None."""
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


def check_server_url(server_url: str) -> str:
    """Validate an absolute http(s) base URL; returned without a trailing slash."""
    if not isinstance(server_url, str):
        raise ConfigurationError(f"server_url must be a string, got {type(server_url).__name__}")
    try:
        parsed = httpx.URL(server_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"server_url is not a valid URL: {server_url!r} ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            "server_url must be an absolute http(s) URL such as "
            f"'https://api.clerk.com/v1', got {server_url!r}"
        )
    return server_url.rstrip("/")


def check_timeout_ms(timeout_ms: int | None) -> int | None:
    """Validate a timeout in milliseconds (a positive integer, or None)."""
    if timeout_ms is None:
        return None
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0:
        raise ConfigurationError(f"timeout_ms must be a positive integer, got {timeout_ms!r}")
    return timeout_ms


def with_query(path: str, query: Mapping[str, object]) -> str:
    """``path`` with the query string of the parameters that are not None."""
    pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
    return path + "?" + urlencode(pairs) if pairs else path


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
        debug_logger: logging.Logger | None = None,
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
        self.owns_shared_limit = True
        self.debug_logger = None if debug_logger is logger else debug_logger
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

    def derive(
        self,
        *,
        timeout_ms: int | Unset | None,
        retry_config: RetryConfig | Unset | None,
        rate_limit: RateLimit | Unset | None,
        shared_limit: SharedLimiter | Unset | None,
        http_headers: dict[str, str] | None,
    ) -> Transport:
        """A transport on the same HTTP client with other settings (`with_options`).

        It never closes the client or the shared limiter: the transport that built them
        does.
        """
        derived = copy.copy(self)
        derived.owns_client = False
        derived.owns_shared_limit = False
        derived._policies = {}
        if timeout_ms is not UNSET:
            derived.deadline_s = (timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
            derived._timeout = httpx.Timeout(derived.deadline_s)
        if retry_config is not UNSET:
            derived._default_policy = (
                None if retry_config is None else RetryPolicy(retry_config, rng=self.rng)
            )
        if rate_limit is not UNSET or shared_limit is not UNSET:
            # One limiter or the other replaces the parent's: never both.
            derived.rate_limit = None if rate_limit is UNSET else rate_limit
            derived.shared_limit = None if shared_limit is UNSET else shared_limit
            derived.owns_shared_limit = shared_limit is not UNSET and shared_limit is not None
        if http_headers:
            derived._call_headers = {**(self._call_headers or {}), **http_headers}
        return derived

    @overload
    async def request(
        self,
        method: str,
        path: str,
        decode: Callable[[bytes], T],
        *,
        replay_safe: bool,
        retries: RetryConfig | Unset | None,
        server_url: str | None = ...,
        timeout_ms: int | None = ...,
        http_headers: Mapping[str, str] | None = ...,
        json_body: Any = ...,
        api_version: str | None = ...,
        deadline_s: float | None = ...,
        rate_limited: bool = ...,
        raw: Literal[False] = ...,
    ) -> T: ...

    @overload
    async def request(
        self,
        method: str,
        path: str,
        decode: Callable[[bytes], T],
        *,
        replay_safe: bool,
        retries: RetryConfig | Unset | None,
        server_url: str | None = ...,
        timeout_ms: int | None = ...,
        http_headers: Mapping[str, str] | None = ...,
        json_body: Any = ...,
        api_version: str | None = ...,
        deadline_s: float | None = ...,
        rate_limited: bool = ...,
        raw: Literal[True],
    ) -> models.RawResponse[T]: ...

    async def request(
        self,
        method: str,
        path: str,
        decode: Callable[[bytes], T],
        *,
        replay_safe: bool,
        retries: RetryConfig | Unset | None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        api_version: str | None = None,
        deadline_s: float | None = None,
        rate_limited: bool = True,
        raw: bool = False,
    ) -> T | models.RawResponse[T]:
        """Send one logical request (with its retries) to ``path`` (with its query) under
        the server URL, and decode a 2XX body (``raw``: return it undecoded).

        ``decode`` may raise `AnswerMismatch`: the answer is not for this request, so the
        connection that carried it is closed and the call raises `SDKError`.
        ``server_url``, ``timeout_ms`` and ``http_headers`` are the per-call options,
        checked here before the rate limit or the network is touched. ``deadline_s``
        shortens this request's per-attempt deadline (``/jwks``); ``rate_limited=False``
        sends it outside the client's rate limit (``/jwks``, which Clerk does not limit).
        """
        base = self.base_url
        headers = self._call_headers
        timeout = self._timeout
        deadline = self.deadline_s
        if server_url is not None or timeout_ms is not None or http_headers is not None:
            if server_url is not None:
                base = check_server_url(server_url)
            if timeout_ms is not None:
                deadline = cast("int", check_timeout_ms(timeout_ms)) / 1000
                timeout = httpx.Timeout(deadline)
            extra = check_http_headers(http_headers)
            if extra:
                headers = {**(headers or {}), **extra}
        if api_version is not None:
            headers = {**(headers or {}), "Clerk-API-Version": api_version}
        if deadline_s is not None and deadline_s < deadline:
            deadline = deadline_s
            timeout = httpx.Timeout(deadline_s)
        policy = self.policy(retries)
        pause_cap_s = _DEFAULT_PAUSE_CAP_S if policy is None else policy.pause_cap_s
        url = base + path
        attempts = 0

        async def attempt(budget_s: float | None = None) -> Any:
            nonlocal attempts
            attempts += 1
            # A retry never runs past the policy's budget (max_elapsed_time_ms).
            limit = deadline if budget_s is None or budget_s > deadline else budget_s
            return await self._attempt(
                method,
                url,
                path,
                decode,
                headers,
                json_body,
                timeout,
                limit,
                pause_cap_s,
                attempts,
                rate_limited=rate_limited,
                raw=raw,
            )

        if policy is None:
            return await attempt()  # type: ignore[no-any-return]
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
        path: str,
        decode: Callable[[bytes], Any],
        headers: dict[str, str] | None,
        json_body: Any,
        op_timeout: httpx.Timeout | Any,
        deadline_s: float,
        pause_cap_s: float,
        attempt: int,
        *,
        rate_limited: bool,
        raw: bool,
    ) -> Any:
        rate_limit = self.rate_limit if rate_limited else None
        started_at = None if rate_limit is None else await rate_limit.acquire(self.sleep)
        shared = self.shared_limit if rate_limited else None
        token = None if shared is None else await shared.acquire(self.sleep)
        # Nothing is measured or formatted for logs nobody reads.
        debug_logger = self.debug_logger
        log = logger.isEnabledFor(logging.DEBUG) or (
            debug_logger is not None and debug_logger.isEnabledFor(logging.DEBUG)
        )
        sent_at = time.perf_counter() if log else 0.0
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
            if log:
                self._log_attempt(method, path, type(exc).__name__, sent_at, attempt, None)
            raise APITimeoutError(
                f"{method} {url} timed out ({type(exc).__name__})",
                request_sent=not isinstance(exc, _NOT_SENT),
            ) from exc
        except TimeoutError as exc:
            if log:
                self._log_attempt(method, path, "deadline", sent_at, attempt, None)
            raise APITimeoutError(
                f"{method} {url} did not finish within {deadline_s:g} s (timeout_ms bounds "
                "each attempt as a whole, from connect to the last byte)"
            ) from exc
        except httpx.LocalProtocolError:
            if log:
                self._log_attempt(method, path, "LocalProtocolError", sent_at, attempt, None)
            # h11's message quotes the offending header, which may be the Authorization
            # one: say what happened without it, and do not try again (it cannot help).
            raise APIConnectionError(
                f"{method} {url} could not be sent: a header value holds characters that "
                "HTTP does not allow (LocalProtocolError)",
                request_sent=False,
                retryable=False,
            ) from None
        except httpx.TransportError as exc:
            if log:
                self._log_attempt(method, path, type(exc).__name__, sent_at, attempt, None)
            raise APIConnectionError(
                f"{method} {url} got no answer: {type(exc).__name__}: {_reason(exc)}",
                request_sent=not isinstance(exc, _NOT_SENT),
            ) from exc
        except SDKError:
            # An answer too large, or in an encoding not asked for.
            if log:
                self._log_attempt(method, path, "SDKError", sent_at, attempt, None)
            raise
        finally:
            if started_at is not None:
                rate_limit.finished(started_at)  # type: ignore[union-attr]
            elif shared is not None:
                await shared.finished(token)
        status = response.status_code
        if 200 <= status < 300:
            trace_id = response.headers.get(TRACE_ID_HEADER)
            if log:
                self._log_attempt(method, path, status, sent_at, attempt, trace_id)
            content_type = response.headers.get("content-type", "application/json")
            if "json" not in content_type:
                raise SDKError(
                    f"expected a JSON answer, got content type {content_type!r}",
                    status_code=status,
                    headers=response.headers,
                    body=body,
                )
            try:
                result = decode(body)
            except AnswerMismatch as exc:
                await _discard_connection(response)
                raise SDKError(
                    str(exc), status_code=status, headers=response.headers, body=body
                ) from None
            if raw:
                # Decoded here all the same, so that a raw call fails exactly where and
                # how the plain one does.
                return models.RawResponse(
                    status_code=status,
                    headers=response.headers,
                    content=body,
                    clerk_trace_id=trace_id,
                    parsed=result,
                )
            return result
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
        error = error_from_response(status, response.headers, body, retry_after=retry_after)
        if log:
            trace_id = (
                error.clerk_trace_id if isinstance(error, ClerkErrors) else None
            ) or response.headers.get(TRACE_ID_HEADER)
            self._log_attempt(method, path, status, sent_at, attempt, trace_id)
        raise error

    def _log_attempt(
        self,
        method: str,
        path: str,
        outcome: int | str,
        sent_at: float,
        attempt: int,
        trace_id: str | None,
    ) -> None:
        """One DEBUG record for an attempt that ended: to ``clerk_sessions`` and to the
        ``debug_logger``. Only the method, the path and query, and what came back: never
        a header or a body, which carry the key and tokens."""
        elapsed_ms = (time.perf_counter() - sent_at) * 1000
        message = "%s %s -> %s in %.1f ms (attempt %d, trace id %s)"
        args = (method, path, outcome, elapsed_ms, attempt, trace_id)
        extra = {
            "clerk_method": method,
            "clerk_path": path,
            "clerk_outcome": outcome,
            "clerk_elapsed_ms": elapsed_ms,
            "clerk_attempt": attempt,
            "clerk_trace_id": trace_id,
        }
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(message, *args, extra=extra)
        debug_logger = self.debug_logger
        if debug_logger is not None and debug_logger.isEnabledFor(logging.DEBUG):
            debug_logger.debug(message, *args, extra=extra)

    async def aclose(self) -> None:
        if self.shared_limit is not None and self.owns_shared_limit:
            await self.shared_limit.aclose()
        if self.owns_client:
            await self.client.aclose()
