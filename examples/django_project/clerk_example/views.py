"""Views of the example project."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from clerk_sessions.django import aget_client, get_client, require_session
from clerk_sessions.errors import NotFoundError


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Liveness, without authentication."""
    return JsonResponse({"status": "ok"})


@require_GET
@require_session
def me(request: HttpRequest) -> JsonResponse:
    """Who the caller is, from the verified token alone (no request to Clerk)."""
    claims = request.clerk_session
    return JsonResponse({"user_id": claims.user_id, "session_id": claims.session_id})


@require_POST
@require_session
def revoke_session(request: HttpRequest, session_id: str) -> JsonResponse:
    """Revoke one of the caller's own sessions (e.g. a lost phone's).

    Another user's session answers 404 like an unknown one, so that session ids of other
    users cannot be probed.
    """
    claims = request.clerk_session
    clerk = get_client()
    try:
        session = clerk.sessions.get(session_id)
    except NotFoundError:
        session = None
    if session is None or session.user_id != claims.user_id:
        return JsonResponse({"detail": "no such session"}, status=404)
    revoked = clerk.sessions.revoke(session_id)
    return JsonResponse({"id": revoked.id, "status": revoked.status.value})


@require_session
async def my_sessions(request: HttpRequest) -> JsonResponse | HttpResponseNotAllowed:
    """The caller's active sessions: an async view, on the running loop's `AsyncClerk`.

    Served by ASGI (``clerk_example.asgi``), every request of the process shares one
    client; no ``sync_to_async`` is needed.
    """
    # Django's method decorators take async views only from Django 5.0 on.
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    claims = request.clerk_session
    clerk = await aget_client()
    sessions = await clerk.sessions.list(user_id=claims.user_id, status="active")
    return JsonResponse(
        {"sessions": [{"id": s.id, "current": s.id == claims.session_id} for s in sessions]}
    )
