"""Example: a Flask app on the sync `Clerk` that authenticates Clerk session tokens and
lets a user sign out of their other devices.

Configured by environment:

- ``CLERK_SECRET_KEY`` (required): the instance's secret key;
- ``CLERK_API_URL`` (optional): the Backend API base URL, e.g. a local fake's;
- ``CLERK_AUTHORIZED_PARTIES`` (optional): comma-separated origins accepted in ``azp``.

Run it with (Flask finds `create_app`)::

    flask --app examples/flask_app.py run

and call it with a session token from your frontend::

    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:5000/me
"""

from __future__ import annotations

import atexit
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, g, jsonify, request
from flask.typing import ResponseReturnValue

from clerk_sessions import Clerk
from clerk_sessions.models import SessionClaims
from clerk_sessions.verification import UNAVAILABLE_REASONS, Reason

ViewT = TypeVar("ViewT", bound=Callable[..., ResponseReturnValue])


def _authorized_parties() -> list[str] | None:
    value = os.environ.get("CLERK_AUTHORIZED_PARTIES", "")
    parties = [party.strip() for party in value.split(",") if party.strip()]
    return parties or None


def _refusal(reason: str) -> ResponseReturnValue:
    if reason in UNAVAILABLE_REASONS:
        # No verification key right now: a 401 would make clients drop good tokens.
        return jsonify(detail="authentication is unavailable"), 503, {"Retry-After": "5"}
    challenge = (
        "Bearer"  # RFC 6750: no error code for a request that carried no token
        if reason == Reason.MISSING_TOKEN
        else f'Bearer error="invalid_token", error_description="{reason}"'
    )
    return jsonify(detail=reason), 401, {"WWW-Authenticate": challenge}


def create_app(clerk: Clerk | None = None) -> Flask:
    """The application, on ``clerk`` (tests pass one on the fake; by default one built
    from the environment, closed when the process exits)."""
    app = Flask(__name__)
    # One client for the process: every request thread shares its connection pool and
    # JWKS cache. It verifies tokens without calling Clerk.
    if clerk is None:
        clerk = Clerk()
        atexit.register(clerk.close)
    app.extensions["clerk"] = clerk  # for code outside these views: current_app.extensions
    authorized_parties = _authorized_parties()

    def require_session(view: ViewT) -> ViewT:
        """Run ``view`` for a signed-in caller only, with ``g.claims`` set; else 401."""

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            state = clerk.authenticate_request(request, authorized_parties=authorized_parties)
            if not state.is_signed_in or state.claims is None:
                return _refusal(state.reason or Reason.MISSING_TOKEN)
            g.claims = state.claims
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    @app.get("/health")
    def health() -> ResponseReturnValue:
        """Liveness, without authentication."""
        return jsonify(status="ok")

    @app.get("/me")
    @require_session
    def me() -> ResponseReturnValue:
        """Who the caller is, from the verified token alone (no request to Clerk)."""
        claims: SessionClaims = g.claims
        return jsonify(user_id=claims.user_id, session_id=claims.session_id)

    @app.post("/sessions/sign-out-others")
    @require_session
    def sign_out_others() -> ResponseReturnValue:
        """Revoke every active session of the caller except this request's."""
        claims: SessionClaims = g.claims
        # Every page is read before the first revocation: revoking while paging through
        # "active" sessions would shift the offsets.
        others = [
            session.id
            for session in clerk.sessions.iterate(user_id=claims.user_id, status="active")
            if session.id != claims.session_id
        ]
        result = clerk.sessions.revoke_many(others)
        return jsonify(revoked=sorted(result.revoked), failed=sorted(result.failed))

    return app
