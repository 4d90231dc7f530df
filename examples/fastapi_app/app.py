"""Example: a FastAPI app that authenticates Clerk session tokens and lets a user sign
out of their other devices.

Configured by environment:

- ``CLERK_SECRET_KEY`` (required): the instance's secret key;
- ``CLERK_API_URL`` (optional): the Backend API base URL, e.g. a local fake's;
- ``CLERK_JWT_KEY`` (optional): the instance's PEM public key, so that verifying a token
  never fetches ``/jwks``;
- ``CLERK_AUTHORIZED_PARTIES`` (optional): comma-separated origins accepted in ``azp``.

Run it with::

    uvicorn --app-dir examples/fastapi_app app:app

open http://127.0.0.1:8000/docs and paste a session token into Authorize, or call it
with a session token from your frontend::

    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/me
    curl -X POST -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/sessions/sign-out-others
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI

from clerk_sessions.fastapi import ClerkAuth, ClerkDep, clerk_lifespan
from clerk_sessions.models import SessionClaims


def _authorized_parties() -> list[str] | None:
    value = os.environ.get("CLERK_AUTHORIZED_PARTIES", "")
    parties = [party.strip() for party in value.split(",") if party.strip()]
    return parties or None


require_session = ClerkAuth(
    authorized_parties=_authorized_parties(),
    jwt_key=os.environ.get("CLERK_JWT_KEY") or None,
)

# The ready-made ClaimsDep accepts any authorized party; this one checks ours.
Claims = Annotated[SessionClaims, Depends(require_session)]

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness, without authentication."""
    return {"status": "ok"}


@router.get("/me")
async def me(claims: Claims) -> dict[str, Any]:
    """Who the caller is, from the verified token alone (no request to Clerk)."""
    return {
        "user_id": claims.user_id,
        "session_id": claims.session_id,
        "org_id": claims.org_id,
        "expires_at": claims.expires_at,
    }


@router.get("/sessions")
async def my_sessions(claims: Claims, clerk: ClerkDep) -> list[dict[str, Any]]:
    """The caller's active sessions, marking the one this request came from."""
    sessions = await clerk.sessions.list(user_id=claims.user_id, status="active")
    return [
        {
            "id": session.id,
            "client_id": session.client_id,
            "current": session.id == claims.session_id,
        }
        for session in sessions
    ]


@router.post("/sessions/sign-out-others")
async def sign_out_other_devices(claims: Claims, clerk: ClerkDep) -> dict[str, Any]:
    """Revoke every active session of the caller except the one making this request."""
    # Every page is read before the first revocation: `list` alone returns one page (10
    # by default), and revoking while paging through "active" would shift the offsets.
    others = [
        session.id
        async for session in clerk.sessions.iterate(user_id=claims.user_id, status="active")
        if session.id != claims.session_id
    ]
    result = await clerk.sessions.revoke_many(others)
    return {
        "revoked": sorted(result.revoked),
        # Per-id failures are reported, not raised: the other revocations still count.
        "failed": {session_id: str(error) for session_id, error in result.failed.items()},
    }


def create_app(**client_kwargs: Any) -> FastAPI:
    """The application; ``client_kwargs`` go to its `AsyncClerk` (tests pass a transport)."""
    app = FastAPI(title="clerk-sessions example", lifespan=clerk_lifespan(**client_kwargs))
    app.include_router(router)
    return app


app = create_app()
