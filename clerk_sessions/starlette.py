"""Starlette's own authentication (extra ``fastapi``): an `AuthenticationBackend` for
``starlette.middleware.authentication.AuthenticationMiddleware``.

With it, ``request.user`` is a `ClerkUser` for a signed-in caller (an
``UnauthenticatedUser`` otherwise), ``request.auth.scopes`` holds ``"authenticated"``,
and Starlette's ``@requires("authenticated")`` protects endpoints::

    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from clerk_sessions.fastapi import clerk_lifespan
    from clerk_sessions.starlette import ClerkAuthBackend, on_auth_error

    @requires("authenticated", status_code=401)
    async def me(request):
        return JSONResponse({"user_id": request.user.identity})

    app = Starlette(
        routes=[Route("/me", me)],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=ClerkAuthBackend(authorized_parties=["https://example.com"]),
                on_error=on_auth_error,
            )
        ],
        lifespan=clerk_lifespan(),
    )

A request that carries a bad token (expired, forged, for another party) is refused by
the middleware itself: pass ``on_error=on_auth_error`` so that the answer is a 401 with
a ``WWW-Authenticate: Bearer`` challenge (Starlette's default answers 400).
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from clerk_sessions import AsyncClerk
from clerk_sessions.fastapi import AUTH_STATE_ATTRIBUTE, get_clerk
from clerk_sessions.models import SessionClaims
from clerk_sessions.verification import UNAVAILABLE_REASONS, Reason

__all__ = [
    "AUTHENTICATED",
    "ClerkAuthBackend",
    "ClerkAuthenticationError",
    "ClerkUser",
    "on_auth_error",
]

AUTHENTICATED = "authenticated"
"""The scope a signed-in caller has: ``@requires(AUTHENTICATED)``."""


class ClerkUser(BaseUser):
    """A signed-in caller, as ``request.user``.

    ``identity`` and ``display_name`` are the Clerk user id; ``claims`` is the session
    token's `SessionClaims` (session id, organization, role, permissions...).
    """

    def __init__(self, claims: SessionClaims) -> None:
        self.claims = claims

    def __repr__(self) -> str:
        return f"ClerkUser(user_id={self.claims.user_id!r})"

    @property
    def is_authenticated(self) -> bool:
        """Always True: only a signed-in caller gets a `ClerkUser`."""
        return True

    @property
    def display_name(self) -> str:
        """The Clerk user id (the token carries no name)."""
        return self.claims.user_id

    @property
    def identity(self) -> str:
        """The Clerk user id."""
        return self.claims.user_id


class ClerkAuthenticationError(AuthenticationError):
    """The request carried a session token that did not verify, or none could be
    verified right now; ``reason`` is the `Reason` code. `on_auth_error` turns it into
    the answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClerkAuthBackend(AuthenticationBackend):
    """Authenticates each request from its ``Authorization: Bearer`` header or
    ``__session`` cookie, without calling Clerk.

    A signed-in caller gets ``(AuthCredentials(["authenticated"]), ClerkUser(claims))``;
    a request without a token gets None (Starlette's ``UnauthenticatedUser``); a bad
    token raises `ClerkAuthenticationError`, which ``on_error=on_auth_error`` answers
    with a 401 (503 when no verification key is available). The `RequestState` is left
    on ``request.state.clerk_auth`` for every request that reached the backend.

    :param authorized_parties: the origins accepted in ``azp`` (None: the client's).
    :param clerk: the `AsyncClerk` to verify with; default: the application's, opened by
        `clerk_sessions.fastapi.clerk_lifespan`.
    :param accept_pending: also let in sessions that are ``pending`` (tasks left).
    :param leeway_s: tolerated clock skew for ``exp``, ``nbf`` and ``iat``.
    :param jwt_key: the instance's PEM public key, for verification without ``/jwks``.
    """

    def __init__(
        self,
        authorized_parties: Collection[str] | None = None,
        *,
        clerk: AsyncClerk | None = None,
        accept_pending: bool = False,
        leeway_s: float = 5,
        jwt_key: str | None = None,
    ) -> None:
        if isinstance(authorized_parties, str):
            # A str is a Collection[str] of characters: "https://a.com" would match "h".
            raise TypeError("authorized_parties must be a collection of origins, not a str")
        if clerk is not None and not isinstance(clerk, AsyncClerk):
            raise TypeError(f"clerk must be an AsyncClerk, got {type(clerk).__name__}")
        self.authorized_parties = (
            None if authorized_parties is None else frozenset(authorized_parties)
        )
        self.clerk = clerk
        self.accept_pending = accept_pending
        self.leeway_s = leeway_s
        self.jwt_key = jwt_key

    def __repr__(self) -> str:
        parties = None if self.authorized_parties is None else sorted(self.authorized_parties)
        return f"ClerkAuthBackend(authorized_parties={parties!r})"

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The caller's credentials and user; None without a token; raises
        `ClerkAuthenticationError` for a token that did not verify."""
        clerk = self.clerk if self.clerk is not None else get_clerk(conn)
        state = await clerk.authenticate_request(
            conn,
            authorized_parties=self.authorized_parties,
            leeway_s=self.leeway_s,
            jwt_key=self.jwt_key,
            accept_pending=self.accept_pending,
        )
        setattr(conn.state, AUTH_STATE_ATTRIBUTE, state)
        if state.is_signed_in and state.claims is not None:
            return AuthCredentials([AUTHENTICATED]), ClerkUser(state.claims)
        reason = state.reason or Reason.MISSING_TOKEN
        if reason == Reason.MISSING_TOKEN:
            return None
        raise ClerkAuthenticationError(reason)


def on_auth_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    """The answer to a refused request: ``AuthenticationMiddleware(..., on_error=on_auth_error)``.

    401 with ``{"detail": "<reason>"}`` and ``WWW-Authenticate: Bearer
    error="invalid_token", error_description="<reason>"``; 503 with ``Retry-After`` when
    no verification key is available, so that clients keep their tokens through an
    outage. Another backend's `AuthenticationError` gets a 401 with its message.
    """
    reason = exc.reason if isinstance(exc, ClerkAuthenticationError) else None
    if reason in UNAVAILABLE_REASONS:
        return JSONResponse(
            {"detail": "authentication is unavailable"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    if reason is None:
        return JSONResponse({"detail": str(exc)}, status_code=401)
    # Reason codes are fixed snake_case words: nothing to escape in the quoted string.
    challenge = f'Bearer error="invalid_token", error_description="{reason}"'
    return JSONResponse(
        {"detail": reason}, status_code=401, headers={"WWW-Authenticate": challenge}
    )
