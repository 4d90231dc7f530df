"""The data the sessions API sends and receives, as frozen attrs classes.

Field names are the API's. Timestamps stay the API's integers (unix milliseconds), each
with a ``*_dt`` property giving a UTC `datetime`. Unknown fields are ignored and unknown
enum strings are kept, so a newer API version does not break an older SDK.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from clerk_sessions._claims import RequestState, SessionClaims
from clerk_sessions._errors import ClerkErrors, SDKError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BulkRevokeResult",
    "ClerkErrors",
    "CreateSessionRequestBody",
    "CreateSessionTokenFromTemplateResponseBody",
    "CreateSessionTokenResponseBody",
    "ItemOutcome",
    "JobStatus",
    "QueryParamStatus",
    "RawResponse",
    "RefreshSessionRequestBody",
    "RequestState",
    "SDKError",
    "Session",
    "SessionActivity",
    "SessionActivityResponse",
    "SessionClaims",
    "SessionPage",
    "SessionRefresh",
    "SessionStatus",
    "SessionTask",
    "SessionToken",
]


T = TypeVar("T")


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


class _OpenStrEnum(str, enum.Enum):
    """A str enum that keeps values it does not know.

    An unknown value becomes a pseudo-member equal to the raw string (``name`` is the
    value upper-cased), instead of an error or one catch-all member that would lose what
    the server said. Pseudo-members are not cached, so a server cannot grow the enum.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        return member

    def __str__(self) -> str:
        return str(self.value)

    @property
    def is_known(self) -> bool:
        """False for a value this version of the SDK does not know."""
        return self._name_ in type(self).__members__


class SessionStatus(_OpenStrEnum):
    """The status of a session, as the API reports it."""

    ACTIVE = "active"
    REVOKED = "revoked"
    ENDED = "ended"
    EXPIRED = "expired"
    REMOVED = "removed"
    ABANDONED = "abandoned"
    REPLACED = "replaced"
    PENDING = "pending"


class QueryParamStatus(_OpenStrEnum):
    """Filter sessions by the provided status (the ``status`` parameter of ``list``)."""

    ABANDONED = "abandoned"
    ACTIVE = "active"
    ENDED = "ended"
    EXPIRED = "expired"
    REMOVED = "removed"
    REPLACED = "replaced"
    REVOKED = "revoked"


@attrs.frozen(kw_only=True)
class SessionActivity:
    """The latest activity of a session (the spec's ``SessionActivityResponse``)."""

    object: str
    id: str
    is_mobile: bool
    device_type: str | None = None
    browser_name: str | None = None
    browser_version: str | None = None
    ip_address: str | None = None
    city: str | None = None
    country: str | None = None


SessionActivityResponse = SessionActivity


@attrs.frozen(kw_only=True)
class SessionTask:
    """A task the user must complete before the session becomes active."""

    key: str


@attrs.frozen(kw_only=True)
class Session:
    """A Clerk session. Timestamps are unix milliseconds; ``*_dt`` gives UTC datetimes."""

    object: str
    id: str
    user_id: str
    client_id: str
    status: SessionStatus
    last_active_at: int
    expire_at: int
    abandon_at: int
    updated_at: int
    created_at: int
    actor: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    last_active_organization_id: str | None = None
    latest_activity: SessionActivity | None = None
    tasks: tuple[SessionTask, ...] | None = None

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> Session:
        """A session from Clerk's session JSON: raw, or already decoded (the ``data`` of a
        ``session.*`` webhook event, or a session of the testing fake).

        Read exactly as the API's answers are: unknown fields ignored, wrong types refused
        with `ResponseValidationError`, which names the fields at fault.
        """
        from clerk_sessions import _decode

        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, bytes):
            return _decode.decode_session(data)
        return _decode.session_from_data(data)

    @property
    def last_active_at_dt(self) -> datetime:
        """``last_active_at`` as a UTC datetime."""
        return _ms_to_datetime(self.last_active_at)

    @property
    def expire_at_dt(self) -> datetime:
        """``expire_at`` as a UTC datetime."""
        return _ms_to_datetime(self.expire_at)

    @property
    def abandon_at_dt(self) -> datetime:
        """``abandon_at`` as a UTC datetime."""
        return _ms_to_datetime(self.abandon_at)

    @property
    def updated_at_dt(self) -> datetime:
        """``updated_at`` as a UTC datetime."""
        return _ms_to_datetime(self.updated_at)

    @property
    def created_at_dt(self) -> datetime:
        """``created_at`` as a UTC datetime."""
        return _ms_to_datetime(self.created_at)


@attrs.frozen(kw_only=True)
class SessionPage:
    """One page of ``list_page``: the sessions and, when the server says, the total count.

    ``total_count`` is None when the server answered a bare array.
    """

    data: list[Session] = attrs.field(hash=False)
    total_count: int | None = None


@attrs.frozen(kw_only=True)
class SessionToken:
    """A session token (the seed's ``CreateSessionTokenResponseBody``)."""

    object: str = "token"
    jwt: str


CreateSessionTokenResponseBody = SessionToken
CreateSessionTokenFromTemplateResponseBody = SessionToken


@attrs.frozen(kw_only=True)
class SessionRefresh:
    """The answer of ``refresh``: a token (``object == "token"``, ``jwt`` set) or cookie
    directives (``object == "cookies"``, ``cookies`` set), per the request's ``format``."""

    object: str
    jwt: str | None = None
    cookies: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class CreateSessionRequestBody:
    """The body of ``create``."""

    user_id: str
    """The ID representing the user."""
    active_organization_id: str | None = None
    """The ID of the organization to set as active for this session."""


@attrs.frozen(kw_only=True)
class RefreshSessionRequestBody:
    """The body of ``refresh``."""

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

    ``status_code``, ``headers`` (`httpx.Headers`), ``content`` (the body, bytes) and
    ``clerk_trace_id`` (Clerk's id of the request, from its ``X-Clerk-Trace-Id`` header;
    None when the answer has none). ``parse()`` returns exactly what the plain call
    returns. The body is decoded before the call returns, so a raw call raises exactly
    what the plain call would (`ResponseValidationError` included).
    """

    status_code: int
    headers: httpx.Headers = attrs.field(eq=False)
    content: bytes = attrs.field(repr=False)
    clerk_trace_id: str | None = None
    _parsed: T = attrs.field(alias="parsed", repr=False, eq=False)

    def parse(self) -> T:
        """The body decoded, as the plain call returns it."""
        return self._parsed
