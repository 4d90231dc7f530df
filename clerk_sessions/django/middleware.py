"""`ClerkMiddleware`: authenticate every request, in sync and async mode.

Why async mode runs the sync client in a worker thread (``sync_to_async``) instead of an
`AsyncClerk` on the request's event loop:

- one client per process means one JWKS cache and one connection pool for sync and
  async requests alike;
- Django gives middleware no hook at the end of an event loop, so an `AsyncClerk` bound
  to a loop could never be closed;
- under WSGI, an async view runs each request on a new event loop (asgiref's
  ``async_to_sync``): a client per loop would fetch the JWKS on every request.

The cost is one hop to a worker thread and one to the client's loop thread per request
that carries a token (tens of microseconds each); the RSA check itself is similar.
``thread_sensitive=False``: verification touches no thread-bound state (no ORM), and
the default, a single shared thread, would serialize every request's verification.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from clerk_sessions.django._client import get_client
from clerk_sessions.django.conf import clerk_settings
from clerk_sessions.models import RequestState

__all__ = ["ClerkMiddleware", "authenticate"]


def authenticate(request: Any) -> RequestState:
    """Authenticate a Django request with the process-wide client and the settings.

    Sync code only (see `get_client`). Never raises for a bad token.
    """
    conf = clerk_settings()
    return get_client().authenticate_request(
        request, authorized_parties=conf.authorized_parties, jwt_key=conf.jwt_key
    )


def _attach(request: Any, state: RequestState) -> None:
    request.clerk_auth = state
    request.clerk_session = state.claims if state.is_signed_in else None


class ClerkMiddleware:
    """Sets ``request.clerk_session`` and ``request.clerk_auth`` on every request.

    ``request.clerk_auth`` is the `RequestState` (signed in or not, and why not);
    ``request.clerk_session`` is its `SessionClaims` when the caller is signed in, else
    None. The token is read from ``Authorization: Bearer`` or the ``__session`` cookie
    and verified without calling Clerk, checking ``azp`` against
    ``CLERK_AUTHORIZED_PARTIES`` (and using ``CLERK_JWT_KEY`` when set). It refuses no
    request by itself: protect views with `require_session`.

    Works in sync (WSGI) and async (ASGI) stacks, taking the mode of the handler it
    wraps, as Django's own middleware do.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        # asgiref's, which also sees its markcoroutinefunction on 3.11 (pyright reads that
        # branch as asyncio's, deprecated only from 3.14).
        self.async_mode = iscoroutinefunction(get_response)  # pyright: ignore[reportDeprecated]
        if self.async_mode:
            # Tells Django (and asgiref) that calling this instance returns a coroutine.
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        _attach(request, authenticate(request))
        return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        state = await sync_to_async(authenticate, thread_sensitive=False)(request)
        _attach(request, state)
        response: Awaitable[Any] = self.get_response(request)
        return await response
