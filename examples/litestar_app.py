"""Example: a Litestar app whose lifespan owns one `AsyncClerk`, with a guard that
authenticates Clerk session tokens.

Configured by environment:

- ``CLERK_SECRET_KEY`` (required): the instance's secret key;
- ``CLERK_API_URL`` (optional): the Backend API base URL, e.g. a local fake's;
- ``CLERK_AUTHORIZED_PARTIES`` (optional): comma-separated origins accepted in ``azp``.

Run it with::

    uvicorn --app-dir examples litestar_app:app

and call it with a session token from your frontend::

    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/me
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException, ServiceUnavailableException
from litestar.handlers.base import BaseRouteHandler

from clerk_sessions import AsyncClerk
from clerk_sessions.models import SessionClaims
from clerk_sessions.verification import UNAVAILABLE_REASONS, Reason


def _authorized_parties() -> list[str] | None:
    value = os.environ.get("CLERK_AUTHORIZED_PARTIES", "")
    parties = [party.strip() for party in value.split(",") if party.strip()]
    return parties or None


def clerk_lifespan(**client_kwargs: Any) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan that opens one `AsyncClerk` at startup (a missing key stops the app from
    starting) as ``app.state.clerk``, and closes it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncClerk(**client_kwargs) as clerk:
            app.state.clerk = clerk
            yield

    return lifespan


async def requires_session(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A guard: lets signed-in callers through with ``connection.state.claims`` set;
    401 otherwise (503 when no verification key is available)."""
    clerk: AsyncClerk = connection.app.state.clerk
    state = await clerk.authenticate_request(
        connection, authorized_parties=connection.app.state.authorized_parties
    )
    if state.is_signed_in and state.claims is not None:
        connection.state.claims = state.claims
        return
    reason = state.reason or Reason.MISSING_TOKEN
    if reason in UNAVAILABLE_REASONS:
        # A 401 would make clients drop tokens that are fine.
        raise ServiceUnavailableException(
            "authentication is unavailable", headers={"Retry-After": "5"}
        )
    challenge = (
        "Bearer"  # RFC 6750: no error code for a request that carried no token
        if reason == Reason.MISSING_TOKEN
        else f'Bearer error="invalid_token", error_description="{reason}"'
    )
    raise NotAuthorizedException(reason, headers={"WWW-Authenticate": challenge})


def provide_claims(request: Request[Any, Any, Any]) -> SessionClaims:
    """The claims `requires_session` verified (a dependency, named ``claims``)."""
    claims: SessionClaims = request.state.claims
    return claims


def provide_clerk(state: State) -> AsyncClerk:
    """The application's client (a dependency, named ``clerk``)."""
    clerk: AsyncClerk = state.clerk
    return clerk


@get("/health")
async def health() -> dict[str, str]:
    """Liveness, without authentication."""
    return {"status": "ok"}


@get("/me", guards=[requires_session])
async def me(claims: NamedDependency[SessionClaims]) -> dict[str, Any]:
    """Who the caller is, from the verified token alone (no request to Clerk)."""
    return {"user_id": claims.user_id, "session_id": claims.session_id}


@post("/sessions/sign-out-others", guards=[requires_session], status_code=200)
async def sign_out_others(
    claims: NamedDependency[SessionClaims], clerk: NamedDependency[AsyncClerk]
) -> dict[str, Any]:
    """Revoke every active session of the caller except this request's."""
    # Every page is read before the first revocation: revoking while paging through
    # "active" sessions would shift the offsets.
    others = [
        session.id
        async for session in clerk.sessions.iterate(user_id=claims.user_id, status="active")
        if session.id != claims.session_id
    ]
    result = await clerk.sessions.revoke_many(others)
    return {"revoked": sorted(result.revoked), "failed": sorted(result.failed)}


def create_app(**client_kwargs: Any) -> Litestar:
    """The application; ``client_kwargs`` go to its `AsyncClerk` (tests pass a transport)."""
    return Litestar(
        route_handlers=[health, me, sign_out_others],
        lifespan=[clerk_lifespan(**client_kwargs)],
        state=State({"authorized_parties": _authorized_parties()}),
        dependencies={
            "claims": Provide(provide_claims, sync_to_thread=False),
            "clerk": Provide(provide_clerk, sync_to_thread=False),
        },
    )


app = create_app()
