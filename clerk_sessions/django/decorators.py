"""`require_session`: a view decorator that answers 401 unless the caller is signed in."""

# Django ships no type information: its names are unknown to pyright.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.http import JsonResponse

from clerk_sessions.models import RequestState
from clerk_sessions.verification import UNAVAILABLE_REASONS, Reason

__all__ = ["require_session"]

ViewT = TypeVar("ViewT", bound=Callable[..., Any])


def refusal(state: RequestState | None) -> JsonResponse | None:
    """The answer for a request that is not signed in, or None when it is."""
    if state is None:
        raise RuntimeError(
            "request.clerk_auth is missing: add "
            '"clerk_sessions.django.middleware.ClerkMiddleware" to MIDDLEWARE'
        )
    if state.is_signed_in:
        return None
    reason = state.reason or Reason.MISSING_TOKEN
    if reason in UNAVAILABLE_REASONS:
        response = JsonResponse({"detail": "authentication is unavailable"}, status=503)
        response["Retry-After"] = "5"
        return response
    response = JsonResponse({"detail": reason}, status=401)
    # RFC 6750 section 3.1: no error code for a request that carried no credentials.
    response["WWW-Authenticate"] = (
        "Bearer"
        if reason == Reason.MISSING_TOKEN
        else f'Bearer error="invalid_token", error_description="{reason}"'
    )
    return response


def require_session(view: ViewT) -> ViewT:
    """Let the view run only for a signed-in caller; answer 401 (JSON) otherwise.

    Needs `ClerkMiddleware`. The 401 carries ``WWW-Authenticate: Bearer
    error="invalid_token", error_description="<reason>"`` (just ``Bearer`` when the
    request had no token); it is 503 when no verification key is available. Works on
    sync and async views; inside, ``request.clerk_session`` is the caller's claims.
    """
    # asgiref's, which also sees its markcoroutinefunction on 3.11 (pyright reads that
    # branch as asyncio's, deprecated only from 3.14).
    if iscoroutinefunction(view):  # pyright: ignore[reportDeprecated]

        @functools.wraps(view)
        async def async_wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            refused = refusal(getattr(request, "clerk_auth", None))
            if refused is not None:
                return refused
            return await view(request, *args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(view)
    def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
        refused = refusal(getattr(request, "clerk_auth", None))
        if refused is not None:
            return refused
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
