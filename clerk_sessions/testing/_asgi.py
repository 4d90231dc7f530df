"""The fake as an ASGI app: the attempt log, authentication, quota, faults, validation.

The routes answer; this module decides whether they get to (secret key, quota), what
goes wrong on the way (injected faults), records each attempt, and writes the answer to
the connection, or closes it. ``ConnectionDropped`` and ``TRANSPORT_STATE_KEY`` live
here because both ways of serving the app need them: the in-process transport turns the
one into a network error, the uvicorn server hands the app its socket under the other.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from collections.abc import Callable
from urllib.parse import quote

import anyio
import attrs
from starlette.types import Message, Receive, Scope, Send

from . import _routes
from ._faults import FaultConfig, FaultInjector, FaultName, Quota, QuotaTracker
from ._records import RequestRecord
from ._state import FakeState
from ._tokens import TokenMinter
from ._validation import ResponseValidator

#: The key under which uvicorn (through the fake's protocol) hands the app its transport.
TRANSPORT_STATE_KEY = "clerk_sessions.fake.transport"

_HTML_ERROR = (
    b"<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
    b"<body><h1>%d %s</h1><p>The upstream server is unavailable.</p></body></html>\n"
)
_REASONS = {
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


class ConnectionDropped(Exception):
    """Raised by ``fake.app`` to drop a connection when it cannot close the socket itself.

    On the fake's own uvicorn server the app closes the TCP connection instead; the
    in-process transport turns this into the ``httpx2.RemoteProtocolError`` a real
    network gives. ``received``/``expected`` are set for a truncated body.
    """

    def __init__(
        self, message: str, *, received: int | None = None, expected: int | None = None
    ) -> None:
        super().__init__(message)
        self.received = received
        self.expected = expected


class FakeApp:
    """The ASGI 3 application of one fake: every attempt goes through :meth:`__call__`.

    It shares the state's lock, so an attempt's record and the state it changes move
    together (and ``FakeClerk.reset`` clears both at once).
    """

    def __init__(
        self,
        *,
        state: FakeState,
        tokens: TokenMinter,
        secret_key: str,
        clock: Callable[[], float],
        faults: FaultConfig | None,
        quota: Quota | None,
        validator: ResponseValidator | None,
    ) -> None:
        self._state = state
        self._tokens = tokens
        self._lock: threading.RLock = state.lock
        self._secret_key = secret_key
        self._secret_bytes = secret_key.encode()
        self._clock = clock
        self._injector = FaultInjector(faults)
        self._quota = QuotaTracker(quota) if quota else None
        self._validator = validator
        self.requests: list[RequestRecord] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    def reset(self) -> None:
        """Forget the attempt log, quota windows and the fault sequence."""
        with self._lock:
            self.requests.clear()
            self.peak_in_flight = self.in_flight
            self._injector.reset()
            if self._quota:
                self._quota.reset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        raw = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        # httpx2's ASGITransport puts the query in raw_path; servers do not.
        raw_path = raw.split(b"?", 1)[0].decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        headers: dict[str, str] = {}
        authorization = None
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            if key == "authorization":
                authorization = value
            else:
                headers[key] = value.decode("latin-1")
        body = await _read_body(receive)
        authenticated = self._authorized(authorization)
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            record = RequestRecord(
                time=self._clock(),
                method=scope["method"],
                raw_path=raw_path,
                query=query,
                headers=headers,
                body=body,
                authenticated=authenticated,
                in_flight=self.in_flight,
            )
            self.requests.append(record)
        try:
            await self._serve_attempt(scope, receive, send, record)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _authorized(self, authorization: bytes | None) -> bool:
        if authorization is None:
            return False
        scheme, _, token = authorization.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(
            token.strip(), self._secret_bytes
        )

    async def _serve_attempt(
        self, scope: Scope, receive: Receive, send: Send, record: RequestRecord
    ) -> None:
        decision = self._injector.draw()
        record.latency_s = decision.latency_s
        if decision.latency_s:
            await anyio.sleep(decision.latency_s)
        fault: FaultName | None = decision.fault
        if fault == "drop_before":
            record.fault = fault
            await _drop(scope, receive)
            return
        if fault == "html_5xx" and decision.status is not None:
            record.fault, record.status = fault, decision.status
            record.validation = "exempt" if self._validator else None
            reason = _REASONS[decision.status]
            page = _HTML_ERROR % (decision.status, reason, decision.status, reason)
            await _send(send, decision.status, page, "text/html; charset=utf-8", ())
            return
        if fault == "error_5xx" and decision.status is not None:
            record.fault = fault
            answer = _routes.error(
                decision.status,
                "internal_clerk_error",
                "Oops, an unexpected error occurred",
                "There was an internal error on our servers. "
                "We've been notified and are working on fixing it.",
            )
        else:
            answer = self._answer(record)
            if answer.status == 429 and record.fault is None:
                record.fault = "quota"
        record.state_changed = answer.state_changed
        payload = json.dumps(answer.payload, separators=(",", ":")).encode()
        if fault in ("drop_after", "truncate"):
            record.fault = fault
            record.validation = "exempt" if self._validator else None
            if fault == "drop_after":
                await _drop(scope, receive)
                return
            record.truncated_status = answer.status
            head = _head(answer.status, "application/json", answer.headers, len(payload))
            await send(head)
            await send(
                {
                    "type": "http.response.body",
                    "body": payload[: len(payload) // 2],
                    "more_body": True,
                }
            )
            await _drop(scope, receive, received=len(payload) // 2, expected=len(payload))
            return
        record.status = answer.status
        if self._validator is not None:
            violation = self._validator.check(
                api_version=record.headers.get("clerk-api-version"),
                method=record.method,
                raw_path=record.raw_path,
                template=record.operation,
                status=answer.status,
                content_type="application/json",
                body=payload,
                injected=fault == "error_5xx",
            )
            record.validation = "violation" if violation else "ok"
            record.violation = str(violation) if violation else None
        await _send(send, answer.status, payload, "application/json", answer.headers)

    def _answer(self, record: RequestRecord) -> _routes.Answer:
        if not record.authenticated:
            return _routes.error(
                401,
                "authentication_invalid",
                "Invalid authentication",
                "Unable to authenticate the request, you need to supply an active API key",
            )
        found = _routes.match(record.raw_path)
        if found is not None and record.method in found[0].handlers:
            record.operation = found[0].template
        # The quota counts every authenticated request but /jwks, unknown paths included.
        if self._quota is not None and record.operation != "/jwks":
            wait = self._quota.admit(self._secret_key, self._clock())
            if wait is not None:
                answer = _routes.error(
                    429,
                    "too_many_requests",
                    "Too many requests, please try again later.",
                    "You have exceeded the maximum allowed number of requests. "
                    f"Please try again in {wait} seconds.",
                )
                return attrs.evolve(answer, headers=(*answer.headers, ("retry-after", str(wait))))
        return _routes.respond(found, record, self._state, self._tokens)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _head(
    status: int, content_type: str, extra: tuple[tuple[str, str], ...], length: int
) -> Message:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(length).encode())]
    headers.extend((name.encode(), value.encode()) for name, value in extra)
    if not any(name == _routes.TRACE_ID_HEADER for name, _ in extra):
        # Clerk names every answer in this header, successes too.
        headers.append((_routes.TRACE_ID_HEADER.encode(), os.urandom(16).hex().encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _send(
    send: Send, status: int, body: bytes, content_type: str, extra: tuple[tuple[str, str], ...]
) -> None:
    await send(_head(status, content_type, extra, len(body)))
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _drop(
    scope: Scope, receive: Receive, *, received: int | None = None, expected: int | None = None
) -> None:
    """Close the connection without (the rest of) a response."""
    transport = scope.get("state", {}).get(TRANSPORT_STATE_KEY)
    if transport is None:
        if received is not None:
            message = (
                "peer closed connection without sending complete message body "
                f"(received {received} bytes, expected {expected})"
            )
        else:
            message = "Server disconnected without sending a response."
        raise ConnectionDropped(message, received=received, expected=expected)
    # close(), not abort(): a truncated body must reach the client before the FIN.
    transport.close()
    # Wait until the server has seen the connection go, so it does not answer a 500
    # on our behalf or log an incomplete response.
    with anyio.move_on_after(2):
        while (await receive())["type"] != "http.disconnect":
            pass
