"""The data the sessions API sends and receives, as frozen attrs classes.

Field names are the API's. Timestamps stay the API's integers (unix milliseconds), each
with a ``*_dt`` property giving a UTC `datetime`. Unknown fields are ignored and unknown
enum strings are kept, so a newer API version does not break an older SDK.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from clerk_sessions._errors import ClerkErrors, SDKError

if TYPE_CHECKING:
    from clerk_sessions._claims import RequestState, SessionClaims
    from clerk_sessions._more_models import (
        CONNECTION_ERROR_CODE as CONNECTION_ERROR_CODE,
    )
    from clerk_sessions._more_models import (
        BulkRevokeResult,
        CreateSessionRequestBody,
        CreateSessionTokenFromTemplateResponseBody,
        CreateSessionTokenResponseBody,
        ItemOutcome,
        JobStatus,
        RawResponse,
        RefreshSessionRequestBody,
        SessionPage,
        SessionRefresh,
        SessionToken,
    )

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


# Defined on first use (see `__getattr__`): name -> the module that defines it.
_LATER = {
    **dict.fromkeys(("RequestState", "SessionClaims"), "clerk_sessions._claims"),
    **dict.fromkeys(
        (
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
        ),
        "clerk_sessions._more_models",
    ),
}


def __getattr__(name: str) -> Any:
    # Only what reading a session needs is defined at import; the other models (and
    # the verification claims) load with the first use of any of their names, about
    # 7 ms of class definitions that a get-only process skips (`_more_models`).
    module = _LATER.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


# How `Session.from_json` reads: the codec's readers (bytes, decoded data). The codec
# depends on the models, not the reverse: `clerk_sessions._codec.decode` hands its readers
# over here when it loads, and the package's ``__init__`` loads it.
_session_readers: tuple[Callable[[bytes], Session], Callable[[Any], Session]] | None = None


def _read_sessions_with(  # pyright: ignore[reportUnusedFunction]
    from_bytes: Callable[[bytes], Session], from_data: Callable[[Any], Session]
) -> None:
    """Give `Session.from_json` its readers (called by `clerk_sessions._codec.decode`)."""
    global _session_readers
    _session_readers = (from_bytes, from_data)


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


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
        readers = _session_readers
        if readers is None:  # pragma: no cover - the package's __init__ loads the codec
            raise RuntimeError("clerk_sessions._codec.decode is not loaded")
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, bytes):
            return readers[0](data)
        return readers[1](data)

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
