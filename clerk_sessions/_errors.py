"""The exceptions this SDK raises, all mapped from HTTP answers in one place.

Hierarchy::

    ClerkSessionsError
    ├── ConfigurationError            (also a ValueError: bad client settings)
    ├── ClerkErrors                   Clerk answered with its error JSON
    │   ├── BadRequestError           400
    │   ├── AuthenticationError       401
    │   ├── PermissionDeniedError     403
    │   ├── NotFoundError             404
    │   ├── GoneError                 410
    │   ├── UnprocessableEntityError  422
    │   ├── RateLimitError            429 (``retry_after`` seconds)
    │   └── ServerError               5XX
    ├── SDKError                      any other unexpected HTTP answer
    ├── APIConnectionError            no answer at all
    │   └── APITimeoutError
    ├── ResponseValidationError       a 2XX body that breaks the schema
    ├── TokenVerificationError        networkless verification failed (``reason``)
    ├── WebhookVerificationError      a webhook delivery failed verification (``reason``)
    ├── AsyncContextError             the sync Clerk was called on an event loop thread
    └── ClientClosedError             the sync Clerk was used after close()

Messages are one readable line. The secret key never appears in any of them: errors
keep the *response* headers only, never the request's.

Every exception survives ``pickle`` and ``copy.copy`` with its attributes (Celery,
multiprocessing and job stores move them between processes): the keyword-only
constructors cannot be called again from ``args``, so `ClerkSessionsError.__reduce__`
rebuilds an instance from its message and attributes instead.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, cast

import attrs

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AsyncContextError",
    "AuthenticationError",
    "BadRequestError",
    "ClerkError",
    "ClerkErrors",
    "ClerkSessionsError",
    "ClientClosedError",
    "ConfigurationError",
    "GoneError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "SDKError",
    "ServerError",
    "TokenVerificationError",
    "UnprocessableEntityError",
    "WebhookVerificationError",
]

# How much of an unexpected body goes into a message; the full bytes stay on `.body`.
_BODY_EXCERPT_CHARS = 200
# How much of Clerk's own message goes into ours: a hostile answer's would be megabytes,
# and every log line of a retry repeats it. The entries in `.errors` keep it whole.
_MESSAGE_CHARS = 500


def _rebuild(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """Unpickle an SDK exception without calling its constructor (see the module doc)."""
    exc = cls.__new__(cls)
    exc.args = args
    return exc


class ClerkSessionsError(Exception):
    """Base class of every error raised by clerk-sessions."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The default would call type(self)(*self.args), which keyword-only constructors
        # refuse; the attributes travel as the instance's state instead.
        return (_rebuild, (type(self), self.args), self.__dict__ or None)


class ConfigurationError(ClerkSessionsError, ValueError):
    """The client was configured wrongly (for example, no secret key)."""


@attrs.frozen(kw_only=True)
class ClerkError:
    """One entry of Clerk's ``errors`` array."""

    message: str
    long_message: str
    code: str
    meta: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    text = _one_line(text)
    return text[:limit] + "…" if len(text) > limit else text


def _excerpt(body: bytes) -> str:
    # Only the start is decoded: a body may be up to max_response_bytes long. Four bytes
    # a character at most in UTF-8, and whitespace runs shrink to one space.
    head = body[: _BODY_EXCERPT_CHARS * 8]
    return _clip(head.decode("utf-8", errors="replace"), _BODY_EXCERPT_CHARS)


class _HTTPStatusMixin:
    status_code: int
    headers: Mapping[str, str]
    body: bytes


class ClerkErrors(ClerkSessionsError, _HTTPStatusMixin):
    """The API answered with Clerk's error JSON (``{"errors": [...], "clerk_trace_id": ...}``).

    Attributes: ``status_code``, ``errors`` (a list of `ClerkError`), ``clerk_trace_id``,
    ``headers`` (the response's), ``body`` (raw bytes) and ``retry_after`` (the
    ``Retry-After`` header in seconds, when the server sent a usable one).
    """

    def __init__(
        self,
        *,
        status_code: int,
        errors: Sequence[ClerkError],
        clerk_trace_id: str | None,
        headers: Mapping[str, str],
        body: bytes,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        self.hint = hint
        self.errors = list(errors)
        self.clerk_trace_id = clerk_trace_id
        self.headers = headers
        self.body = body
        super().__init__(self._message())

    @property
    def data(self) -> ClerkErrors:
        """The seed SDK kept the decoded body on ``.data``; here it is the error itself."""
        return self

    def _message(self) -> str:
        text = f"{self.status_code} {_reason_phrase(self.status_code)}"
        if self.errors:
            first = self.errors[0]
            detail = _clip(first.long_message or first.message, _MESSAGE_CHARS)
            text += f" - {_clip(first.code, _MESSAGE_CHARS)}: {detail}"
            if len(self.errors) > 1:
                text += f" (+{len(self.errors) - 1} more)"
        if self.clerk_trace_id:
            text += f" [clerk_trace_id={self.clerk_trace_id}]"
        if self.hint:
            text += f" - {self.hint}"
        return text


class BadRequestError(ClerkErrors):
    """400: the request was malformed."""


class AuthenticationError(ClerkErrors):
    """401: the secret key is missing, wrong or revoked."""


class PermissionDeniedError(ClerkErrors):
    """403: the key may not do this."""


class NotFoundError(ClerkErrors):
    """404: no such resource."""


class GoneError(ClerkErrors):
    """410: the endpoint was removed (for example ``verify``: use ``verify_token``)."""


class UnprocessableEntityError(ClerkErrors):
    """422: the parameters were understood but invalid."""


class RateLimitError(ClerkErrors):
    """429: the instance's quota was exceeded.

    ``retry_after`` is the server's ``Retry-After`` in seconds (None when absent or
    unreadable).
    """

    def _message(self) -> str:
        text = super()._message()
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        return text


class ServerError(ClerkErrors):
    """5XX: Clerk failed to handle the request."""


class SDKError(ClerkSessionsError, _HTTPStatusMixin):
    """An unexpected HTTP answer: an error page that is not Clerk's JSON, or a wrong
    content type. ``status_code``, ``headers`` and ``body`` hold what arrived."""

    def __init__(
        self, message: str, *, status_code: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body
        self.retry_after: float | None = None
        excerpt = _excerpt(body)
        text = f"{status_code} {_reason_phrase(status_code)} - {message}"
        if excerpt:
            text += f": {excerpt!r}"
        super().__init__(text)


class APIConnectionError(ClerkSessionsError):
    """The request got no answer (connection refused, reset, DNS, truncated response).

    ``request_sent`` is False when the request cannot have reached the server (the
    connection was never made), which makes even a non-idempotent request safe to repeat.
    ``retryable`` is False when trying again cannot help (the request itself broke the
    HTTP protocol, for example a header value with a control character).
    """

    def __init__(self, message: str, *, request_sent: bool = True, retryable: bool = True) -> None:
        self.request_sent = request_sent
        self.retryable = retryable
        super().__init__(message)


class APITimeoutError(APIConnectionError):
    """The request timed out before an answer arrived."""


class ResponseValidationError(ClerkSessionsError):
    """A successful answer broke the schema.

    ``errors`` lists the problems (``"expected bool @ $.latest_activity.is_mobile"``);
    ``body`` is the raw response body.
    """

    def __init__(self, errors: Sequence[str], *, body: bytes, status_code: int = 200) -> None:
        self.errors = list(errors)
        self.body = body
        self.status_code = status_code
        shown = "; ".join(self.errors[:3])
        more = f" (+{len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        super().__init__(f"response did not match the expected schema: {shown}{more}")


class AnswerMismatch(Exception):
    """Raised by a decoder when a well-formed answer is not the one asked for (another
    session's id): the transport then closes that connection and raises `SDKError`.
    Never leaves the SDK."""


class TokenVerificationError(ClerkSessionsError):
    """Networkless verification of a session token failed; ``reason`` says why as a code
    (``token_expired``, ``invalid_signature`` ...)."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class WebhookVerificationError(ClerkSessionsError):
    """A webhook delivery failed verification; ``reason`` says why as a code.

    ``missing_headers`` (no ``svix-*`` or ``webhook-*`` id, timestamp and signature),
    ``timestamp`` (unreadable, or outside the tolerance window: a replay or a skewed
    clock), ``signature`` (no signature matches the body and the secret), ``payload``
    (over the size limit, or signed but not a Clerk event). The message names neither
    the secret nor any signature.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class AsyncContextError(ClerkSessionsError, RuntimeError):
    """The sync `Clerk` was called from a thread that runs an event loop.

    Blocking that thread would stall every other task on its loop (and deadlock on the
    portal's own loop), so the call is refused: use `AsyncClerk` and ``await`` it there.
    """


class ClientClosedError(ClerkSessionsError, RuntimeError):
    """The client was used after ``close()``/``aclose()`` (or after its ``with`` block
    ended), or after the HTTP client passed as ``http_client`` was closed."""


_STATUS_CLASSES: dict[int, type[ClerkErrors]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: GoneError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _reason_phrase(status: int) -> str:
    return _REASONS.get(status, "HTTP error")


def _text(value: object) -> str:
    # Only scalars are shown: str() of a list nested hundreds deep raises RecursionError.
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return json.dumps(value)
    return ""


def _parse_clerk_errors(body: bytes) -> tuple[list[ClerkError], str | None] | None:
    """Clerk's error JSON, or None when the body is anything else."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # garbage, too deep, or too many digits
        return None
    if not isinstance(data, dict):
        return None
    document = cast("dict[str, Any]", data)
    items = document.get("errors")
    if not isinstance(items, list):
        return None
    errors: list[ClerkError] = []
    for raw in cast("list[object]", items):
        if not isinstance(raw, dict):
            return None
        item = cast("dict[str, Any]", raw)
        meta = item.get("meta")
        errors.append(
            ClerkError(
                message=_text(item.get("message")),
                long_message=_text(item.get("long_message")),
                code=_text(item.get("code")),
                meta=cast("dict[str, Any]", meta) if isinstance(meta, dict) else None,
            )
        )
    trace = document.get("clerk_trace_id")
    return errors, trace if isinstance(trace, str) else None


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    retry_after: float | None = None,
) -> ClerkErrors | SDKError:
    """Map a non-2XX answer to its exception (the one place that does so)."""
    parsed = _parse_clerk_errors(body)
    if parsed is None:
        if status_code == 429:
            # A quota answer without Clerk's JSON (a proxy's, say) is still a 429.
            return RateLimitError(
                status_code=429,
                errors=[],
                clerk_trace_id=None,
                headers=headers,
                body=body,
                retry_after=retry_after,
            )
        error = SDKError(
            "unexpected response (not Clerk's error JSON)",
            status_code=status_code,
            headers=headers,
            body=body,
        )
        error.retry_after = retry_after
        return error
    errors, trace = parsed
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else ClerkErrors
    return cls(
        status_code=status_code,
        errors=errors,
        clerk_trace_id=trace,
        headers=headers,
        body=body,
        retry_after=retry_after,
    )


def describe_cause(exc: BaseException) -> str:
    """What went wrong, from the first exception in the chain that says anything.

    The HTTP libraries' errors repeat their cause's text on asyncio, but on trio a TLS
    failure arrives as an empty ``ConnectError`` over an empty ``BrokenResourceError``.
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
