"""The models most processes never touch, defined when one is first used.

`clerk_sessions.models` holds what reading a session needs (`Session` and the types in
it) and loads this module the first time any other of its names is used: an attrs class
costs about half a millisecond to define, and a process that only gets or lists
sessions (a CLI command, a serverless function) would define these nine for nothing.
Every class here names `clerk_sessions.models` as its module, so its repr, its pickle
and its documentation are those of a model like any other, and annotations resolve in
that module's namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from clerk_sessions.models import Session

if TYPE_CHECKING:
    import httpx
    import httpx2

__all__ = [
    "CONNECTION_ERROR_CODE",
    "BulkRevokeResult",
    "CreateSessionRequestBody",
    "CreateSessionTokenFromTemplateResponseBody",
    "CreateSessionTokenResponseBody",
    "ItemOutcome",
    "JobStatus",
    "RawResponse",
    "RefreshSessionRequestBody",
    "SessionPage",
    "SessionRefresh",
    "SessionToken",
]

T = TypeVar("T")

_MODULE = "clerk_sessions.models"


@attrs.frozen(kw_only=True)
class SessionPage:
    """One page of ``list_page``: the sessions and, when the server says, the total count.

    ``total_count`` is None when the server answered a bare array.
    """

    __module__ = _MODULE

    data: list[Session] = attrs.field(hash=False)
    total_count: int | None = None


@attrs.frozen(kw_only=True)
class SessionToken:
    """A session token (the seed's ``CreateSessionTokenResponseBody``)."""

    __module__ = _MODULE

    object: str = "token"
    jwt: str


CreateSessionTokenResponseBody = SessionToken
CreateSessionTokenFromTemplateResponseBody = SessionToken


@attrs.frozen(kw_only=True)
class SessionRefresh:
    """The answer of ``refresh``: a token (``object == "token"``, ``jwt`` set) or cookie
    directives (``object == "cookies"``, ``cookies`` set), per the request's ``format``."""

    __module__ = _MODULE

    object: str
    jwt: str | None = None
    cookies: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class CreateSessionRequestBody:
    """The body of ``create``."""

    __module__ = _MODULE

    user_id: str
    """The ID representing the user."""
    active_organization_id: str | None = None
    """The ID of the organization to set as active for this session."""


@attrs.frozen(kw_only=True)
class RefreshSessionRequestBody:
    """The body of ``refresh``."""

    __module__ = _MODULE

    expired_token: str
    """The JWT that is sent via the ``__session`` cookie from your frontend."""
    refresh_token: str
    """The refresh token from the ``__refresh`` cookie set via FAPI's handshake flow."""
    request_origin: str
    """The origin of the request."""
    request_headers: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    """The headers of the request."""
    format: str | None = None
    """The format of the response: ``"token"`` (default) or ``"cookie"``."""
    request_originating_ip: str | None = None
    """The IP address of the request."""


@attrs.frozen(kw_only=True)
class BulkRevokeResult:
    """What ``revoke_many`` / ``revoke_all`` did: every id exactly once, in ``revoked``
    (id -> the revoked `Session`) or in ``failed`` (id -> the exception)."""

    __module__ = _MODULE

    revoked: dict[str, Session] = attrs.field(hash=False)
    failed: dict[str, Exception] = attrs.field(hash=False)

    @property
    def ok(self) -> bool:
        """True when no id failed."""
        return not self.failed

    @property
    def total(self) -> int:
        """How many ids were handled."""
        return len(self.revoked) + len(self.failed)


@attrs.frozen(kw_only=True)
class JobStatus:
    """Where a durable revocation job stands (``RevocationJob.status()``).

    Every item of the job is counted once: ``revoked``, ``failed`` or ``pending``.
    """

    __module__ = _MODULE

    name: str
    """The job's name in its store."""
    total: int
    """How many distinct ids the job holds."""
    revoked: int
    """Items with a ``revoked`` outcome."""
    failed: int
    """Items with a ``failed`` outcome."""

    @property
    def pending(self) -> int:
        """Items with no outcome yet: ``total - revoked - failed``."""
        return self.total - self.revoked - self.failed

    @property
    def done(self) -> bool:
        """True when every item has an outcome (some may have failed)."""
        return self.pending == 0


#: The ``error_code`` of an item whose request got no answer (connection refused, reset,
#: timed out): a retryable failure, like 429 and 5XX.
CONNECTION_ERROR_CODE = "connection_error"


@attrs.frozen(kw_only=True)
class ItemOutcome:
    """The recorded outcome of one item of a durable job (``RevocationJob.outcomes()``).

    ``ok`` is True for a revoked item: its revoke succeeded, or the session was already
    revoked or ended; for a user id, every active session of the user was revoked
    (``sessions_revoked`` of them). ``ok`` is False for a failed item, with the HTTP
    status of the answer that failed it (None when there was no answer), Clerk's error
    code (or `CONNECTION_ERROR_CODE`, or the SDK's own name for the problem) and a
    one-line message.
    """

    __module__ = _MODULE

    ok: bool
    status_code: int | None = None
    error_code: str | None = None
    message: str = ""
    sessions_revoked: int | None = None
    """For a user id: how many of the user's sessions this item revoked."""

    @property
    def retryable(self) -> bool:
        """True for a failure that may succeed later: 429, 5XX or no answer at all.

        These are the items ``RevocationJob.retry_failed()`` puts back to pending.
        """
        if self.ok:
            return False
        if self.status_code is not None:
            return self.status_code == 429 or self.status_code >= 500
        return self.error_code == CONNECTION_ERROR_CODE


@attrs.frozen(kw_only=True)
class RawResponse(Generic[T]):
    """A successful answer as it arrived (``clerk.sessions.with_raw_response.<op>``).

    ``status_code``, ``headers`` (the engine's case-insensitive ``Headers``:
    ``httpx2.Headers``, or ``httpx.Headers`` on a user's httpx client), ``content`` (the
    body, bytes) and ``clerk_trace_id`` (Clerk's id of the request, from its
    ``X-Clerk-Trace-Id`` header; None when the answer has none). ``parse()`` returns
    exactly what the plain call returns. The body is decoded before the call returns, so
    a raw call raises exactly what the plain call would (`ResponseValidationError`
    included).
    """

    __module__ = _MODULE

    status_code: int
    headers: httpx2.Headers | httpx.Headers = attrs.field(eq=False)
    content: bytes = attrs.field(repr=False)
    clerk_trace_id: str | None = None
    _parsed: T = attrs.field(alias="parsed", repr=False, eq=False)

    def parse(self) -> T:
        """The body decoded, as the plain call returns it."""
        return self._parsed
