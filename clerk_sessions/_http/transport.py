"""One request to the Backend API: rate limit, send, map the answer, retry.

This is the hot path of every operation. Everything that does not change between calls
(URL prefix, headers, the engine's exception classes, the retry policy) is built once in
``__init__``; a call builds only its URL and, for a POST, its body.

What a hostile or broken server can send is bounded here, for every path (sessions,
errors, ``/jwks``): each attempt runs under one deadline from connect to the last byte
(the HTTP library's timeouts are per operation, so a server dripping a byte a second
never trips them), and the body is read within ``max_response_bytes`` (`body`).

The same code runs a request on either engine (`engine`): whatever the library raises
is mapped to the SDK's errors here, so no httpx or httpx2 exception reaches the caller.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, TypeVar, cast, overload

import anyio

from clerk_sessions import _telemetry, models
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
    ClerkSessionsError,
    ClientClosedError,
    SDKError,
    describe_cause,
    error_from_response,
)
from clerk_sessions._http.body import ACCEPT_ENCODING, discard_connection, encode_json, read_body
from clerk_sessions._http.client import build_client
from clerk_sessions._http.engine import HTTPX2, Engine
from clerk_sessions._logging import log_attempt
from clerk_sessions._ratelimit import RateLimit, SharedLimiter
from clerk_sessions._retry import RetryPolicy, parse_retry_after
from clerk_sessions._telemetry import METRICS_MODULE, TRACE_MODULE, Call, Operation

__all__ = ["TRACE_ID_HEADER", "Transport"]

logger = logging.getLogger("clerk_sessions")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]

# The response header in which Clerk names the request for its support (seen on every
# answer of the live API, errors included).
TRACE_ID_HEADER = "x-clerk-trace-id"
# A 429 without a usable Retry-After still pauses the limiter this long.
_DEFAULT_QUOTA_PAUSE_S = 1.0
# Without a retry policy, a 429 pauses the limiter at most as long as the default
# policy would wait for it.
_DEFAULT_PAUSE_CAP_S = RetryConfig().max_retry_after_ms / 1000
# asyncio's own timeout is a single timer; anyio's cancel scope costs more per call, and
# is needed only on trio. A fast path, so CLERK_SESSIONS_NO_FAST_PATHS turns it off.
_asyncio_timeout: Callable[[float | None], AbstractAsyncContextManager[Any]] | None = (
    asyncio.timeout if FAST_PATHS else None
)


def _on_asyncio() -> bool:
    """Whether the running task is asyncio's (the other library the SDK runs on is trio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Transport:
    """Sends requests for one client. Not part of the public API.

    ``http_client`` (the user's, never closed here) or ``transport`` (for the client
    built here) is of ``engine``'s library; without either, the client is the SDK's own
    on httpx2 (`client.build_client`).
    """

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
        http_client: Any | None = None,
        transport: Any | None = None,
        engine: Engine = HTTPX2,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        debug_logger: logging.Logger | None = None,
    ) -> None:
        self.base_url = server_url.rstrip("/")
        self.max_response_bytes = max_response_bytes
        # The whole attempt, connect to last byte; the library's timeouts bound each
        # operation (connect, each read, each write) on its own.
        self.deadline_s = (timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
        self.api_version = api_version
        self.rate_limit = rate_limit
        # A limiter shared over the network (Redis): its calls are awaited, while the
        # in-process one keeps its plain method calls on the hot path.
        self.shared_limit = shared_limit
        self.owns_shared_limit = True
        self.debug_logger = None if debug_logger is logger else debug_logger
        self.engine = engine
        # The engine's exceptions, read once: the attempt maps them to the SDK's.
        self._timeout_error = engine.timeout_error
        self._not_sent = engine.not_sent
        self._local_protocol_error = engine.local_protocol_error
        self._transport_error = engine.transport_error
        self._status_error = engine.status_error
        self._http_error = engine.http_error
        headers = {
            "Authorization": f"Bearer {secret_key}",
            "Accept": "application/json",
            "Clerk-API-Version": api_version,
            "User-Agent": engine.user_agent,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        if http_client is None:
            # Our own client carries the headers, so a call passes none of its own.
            built = build_client(
                headers=headers, timeout_s=self.deadline_s, transport=transport, engine=engine
            )
            self.client: Any = built.client
            # Requests go straight to its transport (see BuiltClient), with what the
            # client would have put on them: its headers (the library's defaults and
            # ours) and its timeout.
            self._direct: Any | None = built.transport
            self._client_headers = dict(self.client.headers)
            self._client_timeout = {"timeout": self.client.timeout.as_dict()}
            self.owns_client = True
            self._call_headers: dict[str, str] | None = None
        else:
            self.client = http_client
            self._direct = None
            self.owns_client = False
            self._call_headers = headers
        # Our client carries its timeout; a user's client keeps its own unless one is given.
        self._timeout: Any = (
            engine.timeout(timeout_ms / 1000)
            if http_client is not None and timeout_ms is not None
            else engine.use_client_default
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
            derived._timeout = self.engine.timeout(derived.deadline_s)
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
        operation: Operation | None = ...,
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
        operation: Operation | None = ...,
    ) -> models.RawResponse[T]: ...

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
        raw: bool,
        operation: Operation | None = ...,
    ) -> T | models.RawResponse[T]: ...

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
        operation: Operation | None = None,
    ) -> T | models.RawResponse[T]:
        """Send one logical request (with its retries) to ``path`` (with its query) under
        the server URL, and decode a 2XX body (``raw``: return it undecoded).

        ``decode`` may raise `AnswerMismatch`: the answer is not for this request, so the
        connection that carried it is closed and the call raises `SDKError`.
        ``server_url``, ``timeout_ms`` and ``http_headers`` are the per-call options,
        checked here before the rate limit or the network is touched. ``deadline_s``
        shortens this request's per-attempt deadline (``/jwks``); ``rate_limited=False``
        sends it outside the client's rate limit (``/jwks``, which Clerk does not limit).
        ``operation`` names the call's span and metrics (`clerk_sessions._telemetry`).
        """
        base = self.base_url
        headers = self._call_headers
        timeout = self._timeout
        deadline = self.deadline_s
        if server_url is not None or timeout_ms is not None or http_headers is not None:
            # Checked here, before the rate limit or the network is touched; a call
            # without them skips the module.
            from clerk_sessions import _options

            base, deadline, timeout, headers = _options.per_call(
                self.engine, server_url, timeout_ms, http_headers, base, deadline, timeout, headers
            )
        if api_version is not None:
            headers = {**(headers or {}), "Clerk-API-Version": api_version}
        if deadline_s is not None and deadline_s < deadline:
            deadline = deadline_s
            timeout = self.engine.timeout(deadline_s)
        content = None
        if json_body is not None:
            content = encode_json(json_body)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        policy = self.policy(retries)
        pause_cap_s = _DEFAULT_PAUSE_CAP_S if policy is None else policy.pause_cap_s
        url = base + path
        attempts = 0
        call: Call | None = None  # once started, ended below however the call ends
        loaded = _telemetry.loaded_in  # no telemetry code runs before OpenTelemetry is loaded
        if operation is not None and (TRACE_MODULE in loaded or METRICS_MODULE in loaded):
            call = _telemetry.start_call(operation, base, self.sleep)

        async def attempt(budget_s: float | None = None) -> Any:
            nonlocal attempts
            attempts += 1
            # A retry never runs past the policy's budget (max_elapsed_time_ms).
            limit = deadline if budget_s is None or budget_s > deadline else budget_s
            try:
                return await self._attempt(
                    method,
                    url,
                    path,
                    decode,
                    headers,
                    content,
                    timeout,
                    limit,
                    pause_cap_s,
                    attempts,
                    call,
                    rate_limited=rate_limited,
                    raw=raw,
                )
            except BaseException as exc:
                if call is not None:
                    call.attempt_failed(exc)
                raise

        try:
            if policy is None:
                result = await attempt()
            else:
                started = policy.clock()
                try:
                    result = await attempt()
                except ClerkSessionsError as failure:
                    # Only a failure goes into the retry machinery.
                    if not policy.wants_retry(failure, replay_safe):
                        raise
                    sleep = self.sleep if call is None else call.retry_sleep
                    result = await policy.retry(
                        failure, attempt, started=started, replay_safe=replay_safe, sleep=sleep
                    )
        except BaseException as exc:
            if call is not None:
                call.end(exc, attempts)
            raise
        if call is not None:
            call.end(None, attempts)
        return result  # type: ignore[no-any-return]

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        content: bytes | None,
        op_timeout: Any,
    ) -> tuple[Any, bytes]:
        if self.client.is_closed:
            raise ClientClosedError(
                "the HTTP client has been closed: this client (or the http_client it was "
                "given) was closed; create a new one"
            )
        direct = self._direct
        if direct is not None:
            merged: Any = self._client_headers
            if headers is not None:
                # Case-insensitive: a call's header replaces the client's of that name.
                merged = self.engine.headers(merged)
                merged.update(headers)
            extensions = (
                self._client_timeout
                if op_timeout is self.engine.use_client_default
                else {"timeout": op_timeout.as_dict()}
            )
            request = self.engine.request(
                method,
                url,
                content=content,
                headers=merged,
                extensions=extensions,
            )
            response = await direct.handle_async_request(request)
        else:
            client = self.client
            request = client.build_request(
                method, url, content=content, headers=headers, timeout=op_timeout
            )
            response = await client.send(request, stream=True)
        try:
            body = await read_body(response, self.max_response_bytes)
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
        content: bytes | None,
        op_timeout: Any,
        deadline_s: float,
        pause_cap_s: float,
        attempt: int,
        call: Call | None,
        *,
        rate_limited: bool,
        raw: bool,
    ) -> Any:
        rate_limit = self.rate_limit if rate_limited else None
        shared = self.shared_limit if rate_limited else None
        # A limiter waits with the call's sleep, which counts the wait.
        sleep = self.sleep if call is None else call.limiter_sleep
        started_at = None if rate_limit is None else await rate_limit.acquire(sleep)
        token = None if shared is None else await shared.acquire(sleep)
        if call is not None and (rate_limit is not None or shared is not None):
            call.acquired()
        # Nothing is measured or formatted for logs nobody reads.
        debug_logger = self.debug_logger
        log = logger.isEnabledFor(logging.DEBUG) or (
            debug_logger is not None and debug_logger.isEnabledFor(logging.DEBUG)
        )
        sent_at = time.perf_counter() if log else 0.0
        try:
            if _asyncio_timeout is not None and _on_asyncio():
                async with _asyncio_timeout(deadline_s):
                    response, body = await self._exchange(method, url, headers, content, op_timeout)
            else:
                with anyio.fail_after(deadline_s):
                    response, body = await self._exchange(method, url, headers, content, op_timeout)
        except self._timeout_error as exc:
            if log:
                self._log_attempt(method, path, type(exc).__name__, sent_at, attempt, None)
            raise APITimeoutError(
                f"{method} {url} timed out ({type(exc).__name__})",
                request_sent=not isinstance(exc, self._not_sent),
            ) from exc
        except TimeoutError as exc:
            if log:
                self._log_attempt(method, path, "deadline", sent_at, attempt, None)
            raise APITimeoutError(
                f"{method} {url} did not finish within {deadline_s:g} s (timeout_ms bounds "
                "each attempt as a whole, from connect to the last byte)"
            ) from exc
        except self._local_protocol_error:
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
        except self._transport_error as exc:
            if log:
                self._log_attempt(method, path, type(exc).__name__, sent_at, attempt, None)
            raise APIConnectionError(
                f"{method} {url} got no answer: {type(exc).__name__}: {describe_cause(exc)}",
                request_sent=not isinstance(exc, self._not_sent),
            ) from exc
        except self._status_error as exc:
            # Raised by an event hook of the user's client (``raise_for_status``): the
            # answer came, but its body was never read.
            if log:
                self._log_attempt(method, path, type(exc).__name__, sent_at, attempt, None)
            answer = cast(Any, exc).response
            raise SDKError(
                f"{method} {url}: the http_client's event hook refused the "
                f"{answer.status_code} answer ({type(exc).__name__})",
                status_code=answer.status_code,
                headers=answer.headers,
                body=b"",
            ) from None
        except self._http_error as exc:
            # Anything else the library raises (a user's client following redirects
            # past its limit, say): the call got no usable answer, and would not on retry.
            if log:
                self._log_attempt(method, path, type(exc).__name__, sent_at, attempt, None)
            raise APIConnectionError(
                f"{method} {url} got no usable answer: {type(exc).__name__}: {describe_cause(exc)}",
                retryable=False,
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
        if call is not None:
            call.answered(status, response.headers.get(TRACE_ID_HEADER) if call.recording else None)
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
                await discard_connection(response)
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
        log_attempt(self.debug_logger, method, path, outcome, sent_at, attempt, trace_id)

    async def aclose(self) -> None:
        if self.shared_limit is not None and self.owns_shared_limit:
            await self.shared_limit.aclose()
        if self.owns_client:
            await self.client.aclose()
