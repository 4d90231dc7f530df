"""Django REST framework authentication: `ClerkAuthentication` (extra ``django``, with
``djangorestframework`` installed; this module is the only one that imports DRF)::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["clerk_sessions.django.drf.ClerkAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    }

In a view, ``request.user`` is then a `ClerkUser` and ``request.auth`` the caller's
`SessionClaims`.
"""

# Django REST framework ships no type information: its names are unknown to pyright.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
# pyright: reportUntypedBaseClass=false, reportUnknownVariableType=false

from __future__ import annotations

from typing import Any

try:
    from rest_framework.authentication import (  # type: ignore[import-untyped]
        BaseAuthentication,
    )
    from rest_framework.exceptions import (  # type: ignore[import-untyped]
        APIException,
        AuthenticationFailed,
    )
except ModuleNotFoundError as exc:
    if (exc.name or "").partition(".")[0] != "rest_framework":
        raise
    raise ImportError(
        "clerk_sessions.django.drf is for Django REST framework, which is not installed: "
        "pip install djangorestframework (the rest of clerk_sessions.django works without it)"
    ) from exc

from clerk_sessions.django._user import ClerkUser
from clerk_sessions.django.middleware import authenticate
from clerk_sessions.models import RequestState, SessionClaims
from clerk_sessions.verification import UNAVAILABLE_REASONS, Reason

__all__ = ["AuthenticationUnavailable", "ClerkAuthentication", "ClerkUser"]


class AuthenticationUnavailable(APIException):  # type: ignore[misc]  # DRF ships no types
    """503: no verification key is available (Clerk's ``/jwks`` unreachable, or a broken
    ``CLERK_JWT_KEY``). Not a 401: the caller's token may well be fine, and a client that
    got a 401 would drop it."""

    status_code = 503
    default_detail = "authentication is unavailable"
    default_code = "authentication_unavailable"
    #: Seconds, sent as ``Retry-After`` by DRF's exception handler.
    wait = 5


class ClerkAuthentication(BaseAuthentication):  # type: ignore[misc]  # DRF ships no types
    """Authenticates a request from its ``Authorization: Bearer`` header or ``__session``
    cookie, verified without calling Clerk, with the ``CLERK_*`` settings.

    `authenticate` returns ``(ClerkUser, SessionClaims)`` for a valid token, None for a
    request without one (so that the next authentication class runs), and raises
    ``AuthenticationFailed`` for a bad one. `authenticate_header` makes DRF answer 401,
    not 403, to a request that is not authenticated. When `ClerkMiddleware` already
    verified the request, its result is used rather than verifying again.
    """

    def authenticate(self, request: Any) -> tuple[ClerkUser, SessionClaims] | None:
        """The caller's user and claims, None without a token; raises
        ``AuthenticationFailed`` (401) for a token that did not verify, and
        `AuthenticationUnavailable` (503) when none can be verified right now."""
        state = getattr(request, "clerk_auth", None)
        if not isinstance(state, RequestState):
            state = authenticate(request)
            request.clerk_auth = state
        if state.is_signed_in and state.claims is not None:
            return ClerkUser(state.claims), state.claims
        reason = state.reason or Reason.MISSING_TOKEN
        if reason == Reason.MISSING_TOKEN:
            return None
        if reason in UNAVAILABLE_REASONS:
            raise AuthenticationUnavailable()
        raise AuthenticationFailed(detail=str(reason), code=str(reason))

    # DRF's own returns None, which is how a class says "answer 403".
    def authenticate_header(self, request: Any) -> str:  # pyright: ignore[reportIncompatibleMethodOverride]
        """``Bearer``, with RFC 6750's ``error="invalid_token"`` and the reason when the
        request carried a token that did not verify."""
        state = getattr(request, "clerk_auth", None)
        reason = state.reason if isinstance(state, RequestState) else None
        if reason is None or reason == Reason.MISSING_TOKEN or reason in UNAVAILABLE_REASONS:
            return "Bearer"
        # Reason codes are fixed snake_case words: nothing to escape in the quoted string.
        return f'Bearer error="invalid_token", error_description="{reason}"'
