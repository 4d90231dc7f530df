"""The data the sessions API sends and receives, as frozen attrs classes.

Field names are the API's. Timestamps stay the API's integers (unix milliseconds), each
with a ``*_dt`` property giving a UTC `datetime`. Unknown fields are ignored and unknown
enum strings are kept, so a newer API version does not break an older SDK.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from clerk_sessions._claims import RequestState, SessionClaims
from clerk_sessions._errors import ClerkErrors, SDKError

__all__ = [
    "BulkRevokeResult",
    "ClerkErrors",
    "CreateSessionRequestBody",
    "CreateSessionTokenFromTemplateResponseBody",
    "CreateSessionTokenResponseBody",
    "QueryParamStatus",
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
