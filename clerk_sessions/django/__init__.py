"""Django integration (extra ``django``).

Settings (read at first use, not at import): ``CLERK_SECRET_KEY`` (else the environment
variable of that name), ``CLERK_API_URL``, ``CLERK_AUTHORIZED_PARTIES`` (a list of
origins accepted in ``azp``), ``CLERK_JWT_KEY`` (optional PEM public key)::

    INSTALLED_APPS = [..., "clerk_sessions.django"]          # system checks
    MIDDLEWARE = [..., "clerk_sessions.django.middleware.ClerkMiddleware"]

    from clerk_sessions.django import get_client, require_session

    @require_post
    @require_session
    def revoke(request, session_id):
        if get_client().sessions.get(session_id).user_id != request.clerk_session.user_id:
            ...

`ClerkMiddleware` sets ``request.clerk_session`` (`SessionClaims` or None) and
``request.clerk_auth`` (the `RequestState`); `require_session` answers 401 for signed-out
callers; `get_client` is the process-wide sync `Clerk`, and ``await aget_client()`` the
running event loop's `AsyncClerk`, for async views::

    @require_session
    async def my_sessions(request):
        clerk = await aget_client()
        sessions = await clerk.sessions.list(user_id=request.clerk_session.user_id)

For Django REST framework, `clerk_sessions.django.drf.ClerkAuthentication` makes
``request.user`` a `ClerkUser`. `webhook_view` makes a view the endpoint of Clerk's
webhooks (session events; setting ``CLERK_WEBHOOK_SIGNING_SECRET``).
"""

from __future__ import annotations

from clerk_sessions.django._client import aget_client, get_client
from clerk_sessions.django._user import ClerkUser
from clerk_sessions.django.conf import ClerkSettings, clerk_settings
from clerk_sessions.django.decorators import require_session
from clerk_sessions.django.middleware import ClerkMiddleware, authenticate
from clerk_sessions.django.webhooks import webhook_view

__all__ = [
    "ClerkMiddleware",
    "ClerkSettings",
    "ClerkUser",
    "aget_client",
    "authenticate",
    "clerk_settings",
    "get_client",
    "require_session",
    "webhook_view",
]
