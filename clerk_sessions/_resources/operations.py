"""The sessions operations as OpenTelemetry names them (`clerk_sessions._telemetry`):
each one's name (its span is ``clerk.sessions.<name>``), method and URL template."""

from __future__ import annotations

from clerk_sessions._telemetry import Operation

__all__ = [
    "CREATE",
    "CREATE_TOKEN",
    "CREATE_TOKEN_FROM_TEMPLATE",
    "GET",
    "LIST",
    "LIST_PAGE",
    "REFRESH",
    "REVOKE",
    "REVOKE_ALL",
    "REVOKE_MANY",
    "VERIFY",
]

LIST = Operation("list", "GET", "/sessions")
LIST_PAGE = Operation("list_page", "GET", "/sessions")
CREATE = Operation("create", "POST", "/sessions")
GET = Operation("get", "GET", "/sessions/{session_id}")
REVOKE = Operation("revoke", "POST", "/sessions/{session_id}/revoke")
VERIFY = Operation("verify", "POST", "/sessions/{session_id}/verify")
CREATE_TOKEN = Operation("create_token", "POST", "/sessions/{session_id}/tokens")
CREATE_TOKEN_FROM_TEMPLATE = Operation(
    "create_token_from_template", "POST", "/sessions/{session_id}/tokens/{template_name}"
)
REFRESH = Operation("refresh", "POST", "/sessions/{session_id}/refresh")
# Bulk operations: many requests, each with a span of its own under theirs.
REVOKE_MANY = Operation("revoke_many")
REVOKE_ALL = Operation("revoke_all")
