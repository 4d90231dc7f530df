"""What the operations other than the session reads send and read back: request bodies
(checked strictly, so a typo fails before any I/O) and the answers that cattrs reads.

Nothing here is on the path of a session read: cattrs loads with the first of these.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from clerk_sessions import models
from clerk_sessions._codec import decode

if TYPE_CHECKING:
    import cattrs

    # Defined on first use (clerk_sessions.models).
    from clerk_sessions.models import (
        CreateSessionRequestBody,
        RefreshSessionRequestBody,
        SessionRefresh,
        SessionToken,
    )

__all__ = [
    "create_body",
    "decode_refresh",
    "decode_token",
    "expires_body",
    "refresh_body",
    "verify_body",
]


@functools.cache
def _request_converter() -> cattrs.Converter:
    # Request bodies given as dicts are checked strictly, so a typo fails before any I/O.
    # Built on the first such body, not at import: most programs never pass one.
    from clerk_sessions._codec import converter

    return converter.make_converter(detailed=True, forbid_extra_keys=True)


def _request_body(value: object, cls: type[Any], what: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a {cls.__name__} or a dict, got {type(value).__name__}")
    data: dict[str, Any] = dict(cast("Mapping[str, Any]", value))
    if "format_" in data and "format" not in data:  # the seed SDK's spelling
        data["format"] = data.pop("format_")
    from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
    from cattrs.v import transform_error

    try:
        return _request_converter().structure(data, cls)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        problems = "; ".join(transform_error(exc, path=what))
        raise TypeError(f"invalid {what}: {problems}") from None


def expires_body(expires_in_seconds: float | None) -> dict[str, int] | None:
    if expires_in_seconds is None:
        return None
    if isinstance(expires_in_seconds, bool) or not isinstance(expires_in_seconds, (int, float)):
        raise TypeError(
            f"expires_in_seconds must be a number, got {type(expires_in_seconds).__name__}"
        )
    if expires_in_seconds != expires_in_seconds or expires_in_seconds in (
        float("inf"),
        float("-inf"),
    ):
        raise ValueError(f"expires_in_seconds must be finite, got {expires_in_seconds!r}")
    # The API takes whole seconds; the seed's examples pass floats such as 6005.84.
    return {"expires_in_seconds": round(expires_in_seconds)}


def decode_token(body: bytes) -> SessionToken:
    # cattrs loads here: a process that only reads sessions never imports it.
    from clerk_sessions._codec import converter

    result: SessionToken = converter.structure(body, decode.loads(body), models.SessionToken)
    return result


def decode_refresh(body: bytes) -> SessionRefresh:
    from clerk_sessions._codec import converter

    result: SessionRefresh = converter.structure(body, decode.loads(body), models.SessionRefresh)
    return result


def create_body(
    request: CreateSessionRequestBody | Mapping[str, Any] | None,
    user_id: str | None,
    active_organization_id: str | None,
) -> Any:
    if request is not None:
        if user_id is not None or active_organization_id is not None:
            raise TypeError("create() takes either request= or keywords, not both")
        body = _request_body(request, models.CreateSessionRequestBody, "request")
    elif user_id is None:
        raise TypeError("create() needs user_id= (or request={'user_id': ...})")
    else:
        body = _request_body(
            {"user_id": user_id, "active_organization_id": active_organization_id},
            models.CreateSessionRequestBody,
            "request",
        )
    from clerk_sessions._codec import converter

    return converter.unstructure_body(body)


def refresh_body(
    request: RefreshSessionRequestBody | Mapping[str, Any] | None, **fields: Any
) -> Any:
    given = {k: v for k, v in fields.items() if v is not None}
    if request is not None:
        if given:
            raise TypeError("refresh() takes either request= or keywords, not both")
        body = _request_body(request, models.RefreshSessionRequestBody, "request")
    else:
        body = _request_body(given, models.RefreshSessionRequestBody, "request")
    from clerk_sessions._codec import converter

    return converter.unstructure_body(body)


def verify_body(token: str | None) -> dict[str, str] | None:
    if token is not None and not isinstance(token, str):
        raise TypeError(f"token must be a string, got {type(token).__name__}")
    return None if token is None else {"token": token}
