"""The fake's endpoints: a table from the spec's path template to one handler per method.

Choices where the spec is silent or the live API differs (each is tested):

- Paths are routed on the raw request path: it is split on ``/`` and each segment is
  percent-decoded on its own, so ``%2F`` inside an id stays inside that id.
- ``Clerk-API-Version`` picks the behaviour: ``POST /sessions/{id}/verify`` exists only
  for ``2025-03-12`` and older and answers 410 otherwise (also when the header is
  absent: the fake then behaves as the newest version, ``2026-05-12``).
- Revoking a session that is no longer active (already revoked, ended, expired...)
  answers 200 with the session unchanged: revoking is idempotent, as the live API
  behaves and as this SDK's ``revoke_many`` assumes.
- Tokens are minted for ``active`` and ``pending`` sessions only (``sts`` says which);
  for any other status the token endpoints answer 404 ``resource_not_found``, the only
  non-auth error the spec documents for them.
- Invalid token bodies answer 422 (an undocumented status there, see
  ``KNOWN_DEVIATIONS``); invalid refresh and verify bodies answer 400, the status those
  operations document. ``POST /sessions`` answers 422 ``form_param_missing`` without
  ``user_id`` and 404 ``resource_not_found`` for an unknown user.
- ``refresh`` answers 401 (the spec's "fall back to the handshake" signal) when the
  session is unknown or not active, the refresh token is not the session's, or the
  expired token was not minted by this fake for that session.
- Lists are newest first (``created_at``, then creation order), ``limit`` defaults to
  10 and applies to both shapes; ``paginated`` accepts only ``true``/``false``; the
  ``status`` filter takes the spec's enum (``pending`` is not in it).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

import attrs

from ._records import RequestRecord
from ._state import QUERY_STATUSES, TOKEN_STATUSES, FakeState, StoredSession
from ._tokens import TokenMinter

_LAST_VERIFY_VERSION = "2025-03-12"
_NEWEST_VERSION = "2026-05-12"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^-?[0-9]+$")
_MIN_TOKEN_S, _MAX_TOKEN_S = 30, 315_360_000


#: The header in which Clerk names each answer (the same id as an error body's).
TRACE_ID_HEADER = "x-clerk-trace-id"


@attrs.frozen
class Answer:
    """What the fake answers: a status, a JSON payload, and extra headers."""

    status: int
    payload: Any
    state_changed: bool = False
    headers: tuple[tuple[str, str], ...] = ()


class Problem(Exception):
    """A Clerk error answer, raised from deep inside a handler or a body parser."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


def error(status: int, code: str, message: str, long_message: str, **meta: str) -> Answer:
    """A Clerk error answer (``errors`` with one error, and a fresh ``clerk_trace_id``)."""
    body: dict[str, Any] = {"message": message, "long_message": long_message, "code": code}
    if meta:
        body["meta"] = meta
    trace = secrets.token_hex(16)
    return Answer(
        status, {"errors": [body], "clerk_trace_id": trace}, headers=((TRACE_ID_HEADER, trace),)
    )


def _not_found(what: str, ident: str) -> Answer:
    return error(404, "resource_not_found", "not found", f"No {what} was found with id {ident!r}")


def _param_problem(status: int, code: str, param: str, long_message: str) -> Problem:
    messages = {
        "form_param_missing": "missing required parameter",
        "form_param_unknown": "is unknown",
    }
    message = messages.get(code, "is invalid")
    return Problem(error(status, code, message, long_message, param_name=param))


# ---------------------------------------------------------------------- body parsers


def _json_body(body: bytes, status: int) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise Problem(
            error(
                status, "request_body_invalid", "is invalid", "The request body is not valid JSON."
            )
        ) from None


def _json_object(body: bytes, status: int) -> dict[str, Any] | None:
    """The JSON object a request body holds (None when empty), or a ``status`` answer."""
    value = _json_body(body, status)
    if value is None or isinstance(value, dict):
        return cast("dict[str, Any] | None", value)
    raise Problem(
        error(
            status,
            "form_param_format_invalid",
            "is invalid",
            "the request body must be a JSON object",
        )
    )


def _int_param(
    params: Mapping[str, str], name: str, default: int, low: int, high: int | None
) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _INTEGER.match(raw):
        raise _param_problem(422, "form_param_format_invalid", name, f"{name} must be an integer")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _param_problem(422, "form_param_value_invalid", name, f"{name} must be {bounds}")
    return value


def _token_lifetime(body: dict[str, Any] | None) -> int | None:
    value = body.get("expires_in_seconds") if body is not None else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _param_problem(
            422,
            "form_param_format_invalid",
            "expires_in_seconds",
            "expires_in_seconds must be an integer",
        )
    if not _MIN_TOKEN_S <= value <= _MAX_TOKEN_S:
        raise _param_problem(
            422,
            "form_param_value_invalid",
            "expires_in_seconds",
            f"expires_in_seconds must be between {_MIN_TOKEN_S} and {_MAX_TOKEN_S}",
        )
    return value


_REFRESH_FIELDS = {
    "expired_token": (str,),
    "refresh_token": (str,),
    "request_origin": (str,),
    "request_headers": (dict, type(None)),
    "format": (str, type(None)),
    "request_originating_ip": (str, type(None)),
}


def _refresh_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Problem(
            error(
                400, "form_param_missing", "missing required parameter", "expired_token is required"
            )
        )
    fields = cast("dict[str, Any]", body)
    for name in fields:
        if name not in _REFRESH_FIELDS:
            raise _param_problem(
                400, "form_param_unknown", name, f"{name} is not a known parameter"
            )
    for name, types in _REFRESH_FIELDS.items():
        if name not in fields:
            if type(None) not in types:
                raise _param_problem(400, "form_param_missing", name, f"{name} must be included")
            continue
        if not isinstance(fields[name], types):
            raise _param_problem(
                400, "form_param_format_invalid", name, f"{name} has the wrong type"
            )
    if fields.get("format") not in (None, "token", "cookie"):
        raise _param_problem(
            400, "form_param_value_invalid", "format", "format must be token or cookie"
        )
    return fields


def _verify_body(fields: dict[str, Any] | None) -> str | None:
    if fields is None:
        return None
    for name in fields:
        if name != "token":
            raise _param_problem(
                400, "form_param_unknown", name, f"{name} is not a known parameter"
            )
    token = fields.get("token")
    if token is not None and not isinstance(token, str):
        raise _param_problem(400, "form_param_format_invalid", "token", "token must be a string")
    return token


# ---------------------------------------------------------------------- handlers


@attrs.frozen
class Call:
    """One routed request, as a handler sees it (``now`` in unix ms)."""

    state: FakeState
    tokens: TokenMinter
    record: RequestRecord
    params: list[str]
    now: int

    def session(self) -> StoredSession:
        """The session the path names, expiry applied; a 404 answer when unknown."""
        session = self.state.sessions.get(self.params[0])
        if session is None:
            raise Problem(_not_found("session", self.params[0]))
        session.settle(self.now)
        return session

    def api_version(self) -> str:
        """The requested ``Clerk-API-Version`` (the newest when absent)."""
        return self.record.headers.get("clerk-api-version") or _NEWEST_VERSION


def _jwks(call: Call) -> Answer:
    return Answer(200, call.tokens.jwks())


def _list(call: Call) -> Answer:
    params = dict(parse_qsl(call.record.query, keep_blank_values=True))
    status = params.get("status")
    if status is not None and status not in QUERY_STATUSES:
        raise _param_problem(
            422,
            "form_param_value_invalid",
            "status",
            f"status must be one of {', '.join(sorted(QUERY_STATUSES))}",
        )
    paginated = params.get("paginated")
    if paginated is not None and paginated not in ("true", "false"):
        raise _param_problem(
            422, "form_param_format_invalid", "paginated", "paginated must be true or false"
        )
    limit = _int_param(params, "limit", 10, 1, 500)
    offset = _int_param(params, "offset", 0, 0, None)
    matches = [
        session
        for session in call.state.newest_first(call.now)
        if params.get("client_id") in (None, session.client_id)
        and params.get("user_id") in (None, session.user_id)
        and status in (None, session.status)
    ]
    page = [session.to_json() for session in matches[offset : offset + limit]]
    if paginated == "true":
        return Answer(200, {"data": page, "total_count": len(matches)})
    return Answer(200, page)


def _create(call: Call) -> Answer:
    body = _json_object(call.record.body, 422) or {}
    user_id = body.get("user_id")
    if user_id is None:
        raise _param_problem(422, "form_param_missing", "user_id", "user_id must be included")
    if not isinstance(user_id, str):
        raise _param_problem(
            422, "form_param_format_invalid", "user_id", "user_id must be a string"
        )
    with_org = call.api_version() > _LAST_VERIFY_VERSION
    org_id = body.get("active_organization_id") if with_org else None
    if "active_organization_id" in body and with_org and not isinstance(org_id, str):
        raise _param_problem(
            422,
            "form_param_format_invalid",
            "active_organization_id",
            "active_organization_id must be a string",
        )
    if user_id not in call.state.users:
        return _not_found("user", user_id)
    created = call.state.add_session(user_id=user_id, active_organization_id=org_id)
    return Answer(200, created.to_json(), state_changed=True)


def _get(call: Call) -> Answer:
    return Answer(200, call.session().to_json())


def _revoke(call: Call) -> Answer:
    session = call.session()
    if session.status not in TOKEN_STATUSES:
        return Answer(200, session.to_json())
    call.state.transition(session, "revoked", call.now)
    return Answer(200, session.to_json(), state_changed=True)


def _verify(call: Call) -> Answer:
    version = call.api_version()
    if not _DATE.match(version) or version > _LAST_VERIFY_VERSION:
        return error(
            410,
            "endpoint_removed",
            "This endpoint was removed",
            "POST /sessions/{session_id}/verify was removed in API version 2025-04-10 "
            f"(requested {version}); verify session tokens networklessly instead.",
        )
    token = _verify_body(_json_object(call.record.body, 400))
    session = call.session()
    if token is not None:
        claims = call.tokens.decode(token)
        if (
            claims is None
            or claims.get("sid") != session.id
            or claims.get("exp", 0) < call.state.clock()
        ):
            return error(
                400,
                "token_invalid",
                "Invalid token",
                "The token is not a valid token for this session.",
            )
    if session.status != "active":
        return error(
            400,
            "session_not_active",
            "Session not active",
            f"The session is {session.status}, not active.",
        )
    return Answer(200, session.to_json())


def _refresh(call: Call) -> Answer:
    body = _refresh_body(_json_body(call.record.body, 400))
    invalid = error(401, "session_invalid", "Invalid session", "The session cannot be refreshed.")
    session = call.state.sessions.get(call.params[0])
    if session is None:
        return invalid
    session.settle(call.now)
    claims = call.tokens.decode(body["expired_token"])
    valid = (
        session.status == "active"
        and hmac.compare_digest(body["refresh_token"], session.refresh_token)
        and claims is not None
        and claims.get("sid") == session.id
    )
    if not valid:
        return invalid
    session.last_active_at = call.now
    session.updated_at = call.now
    jwt = call.tokens.mint(session, None, None)
    if body.get("format") == "cookie":
        cookies = [
            f"__session={jwt}; Path=/; Secure; SameSite=Lax",
            f"__client_uat={call.now // 1000}; Path=/; Max-Age=315360000; Secure; SameSite=Lax",
        ]
        return Answer(200, {"object": "cookies", "cookies": cookies}, state_changed=True)
    return Answer(200, {"object": "token", "jwt": jwt}, state_changed=True)


def _token(call: Call) -> Answer:
    expires_in = _token_lifetime(_json_object(call.record.body, 422))
    session = call.session()
    template = None
    if len(call.params) == 2:
        template = call.state.templates.get(call.params[1])
        if template is None:
            return _not_found("JWT template", call.params[1])
    if session.status not in TOKEN_STATUSES:
        return _not_found("active session", session.id)
    return Answer(200, {"object": "token", "jwt": call.tokens.mint(session, template, expires_in)})


# ---------------------------------------------------------------------- the table

Handler = Callable[[Call], Answer]

#: Every endpoint: the spec's path template (after ``/v1``) -> method -> handler.
ROUTES: dict[str, dict[str, Handler]] = {
    "/jwks": {"GET": _jwks},
    "/sessions": {"GET": _list, "POST": _create},
    "/sessions/{session_id}": {"GET": _get},
    "/sessions/{session_id}/revoke": {"POST": _revoke},
    "/sessions/{session_id}/verify": {"POST": _verify},
    "/sessions/{session_id}/refresh": {"POST": _refresh},
    "/sessions/{session_id}/tokens": {"POST": _token},
    "/sessions/{session_id}/tokens/{template_name}": {"POST": _token},
}


@attrs.frozen
class Route:
    """One path template, as segments (None for a parameter), with its handlers."""

    template: str
    segments: tuple[str | None, ...]
    handlers: Mapping[str, Handler]


def _by_length() -> dict[int, list[Route]]:
    table: dict[int, list[Route]] = {}
    for template, handlers in ROUTES.items():
        parts = template.strip("/").split("/")
        segments = tuple(None if part.startswith("{") else part for part in parts)
        table.setdefault(len(segments), []).append(Route(template, segments, handlers))
    return table


_BY_LENGTH = _by_length()


def match(raw_path: str) -> tuple[Route, list[str]] | None:
    """The route for a raw request path (``/v1/...``) and its decoded parameters."""
    parts = raw_path.split("/")
    if parts[:2] != ["", "v1"]:
        return None
    # "/v1/sessions/x" splits to ["", "v1", "sessions", "x"]; decode segment by segment.
    segments = [unquote(part) for part in parts[2:]]
    for route in _BY_LENGTH.get(len(segments), ()):
        params: list[str] = []
        for expected, segment in zip(route.segments, segments, strict=True):
            if expected is None:
                params.append(segment)
            elif expected != segment:
                break
        else:
            return route, params
    return None


def respond(
    found: tuple[Route, list[str]] | None,
    record: RequestRecord,
    state: FakeState,
    tokens: TokenMinter,
) -> Answer:
    """The answer to an authenticated, admitted request: 404, 405, or its handler's."""
    if found is None:
        return error(
            404, "resource_not_found", "not found", f"{record.raw_path} is not a known path"
        )
    route, params = found
    handler = route.handlers.get(record.method)
    if handler is None:
        answer = error(
            405,
            "method_not_allowed",
            "method not allowed",
            f"{record.method} is not allowed on {record.raw_path}",
        )
        return attrs.evolve(
            answer, headers=(*answer.headers, ("allow", ", ".join(sorted(route.handlers))))
        )
    try:
        with state.lock:
            state.current_request = record
            try:
                return handler(Call(state, tokens, record, params, state.now_ms()))
            finally:
                state.current_request = None
    except Problem as problem:
        return problem.answer
