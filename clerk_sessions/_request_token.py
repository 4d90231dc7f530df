"""Finding the session token in an incoming request: the ``Authorization: Bearer`` header
first, then Clerk's ``__session`` cookie, on any web framework's request or a mapping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

__all__ = ["SESSION_COOKIE", "extract_token"]

#: The cookie in which Clerk's frontend keeps the session token.
SESSION_COOKIE = "__session"


def _mapping(value: object) -> Mapping[str, Any] | None:
    return cast("Mapping[str, Any]", value) if isinstance(value, Mapping) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _header(headers: Any, name: str) -> str | None:
    # Starlette, httpx2, httpx and Django header objects match names case-insensitively in
    # get(); a plain dict needs the scan.
    value = headers.get(name)
    if value is None:
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = item
                break
    return value if isinstance(value, str) else None


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return None


def _cookie_from_header(cookie_header: str | None) -> str | None:
    if not cookie_header:
        return None
    for pair in cookie_header.split(";"):
        name, eq, value = pair.partition("=")
        if eq and name.strip() == SESSION_COOKIE:
            return value.strip().strip('"') or None
    return None


def extract_token(request: object) -> str | None:
    """The session token a request carries, or None.

    Looks at ``Authorization: Bearer <token>`` first (scheme and header name matched
    case-insensitively), then at the ``__session`` cookie. Accepts a Starlette/FastAPI
    ``Request``, a Django ``HttpRequest``, an ``httpx2.Request`` or ``httpx.Request``, or
    a mapping of headers.
    """
    # Checked before Mapping: a Starlette Request is itself a Mapping (of its scope).
    headers: Any = getattr(request, "headers", None)
    if headers is None:
        headers = _mapping(request)
        if headers is None:
            raise TypeError(f"cannot read headers from a {type(request).__name__}")

    authorization = _header(headers, "authorization")
    if authorization is None:
        # Django computes request.headers once from META: a header that middleware
        # sets in META afterwards is only visible there.
        meta = _mapping(getattr(request, "META", None))
        if meta is not None:
            authorization = _str_or_none(meta.get("HTTP_AUTHORIZATION"))
    token = _bearer(authorization)
    if token is not None:
        return token

    cookies = _mapping(getattr(request, "COOKIES", None))  # Django
    if cookies is None:
        cookies = _mapping(getattr(request, "cookies", None))  # Starlette
    if cookies is not None:
        return _str_or_none(cookies.get(SESSION_COOKIE)) or None
    return _cookie_from_header(_header(headers, "cookie"))
