"""The sessions operations: ``clerk.sessions``, the resource and its request builders.

Every single-request operation is two methods: the public one, whose body is one line
(``return await self._send(self._<op>_request(...), <per-call options>)``), and its
request builder, which checks the arguments and says everything about the request
(path, body, decoder, whether repeating it is safe). ``clerk.sessions.with_raw_response``
is generated from the public methods (`clerk_sessions._resources.raw`, by
``scripts/gen_sync.py``): each of its methods sends the same builder's request, raw.
``iterate`` pages through `clerk_sessions._resources.pagination`; ``revoke_many`` and
``revoke_all`` come from `clerk_sessions._revocation`, which holds the bulk rules the
durable jobs share.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar
from urllib.parse import quote

from clerk_sessions._codec import decode
from clerk_sessions._config import UNSET, VERIFY_API_VERSION, RetryConfig, Unset
from clerk_sessions._errors import AnswerMismatch, GoneError
from clerk_sessions._resources import bodies
from clerk_sessions._resources import operations as op
from clerk_sessions._resources.pagination import Paging, list_path
from clerk_sessions._resources.raw import AsyncSessionsWithRawResponse
from clerk_sessions._revocation import BulkRevocation
from clerk_sessions.models import QueryParamStatus, Session

if TYPE_CHECKING:
    from clerk_sessions._http.transport import Transport
    from clerk_sessions._telemetry import Operation

    # Defined on first use (clerk_sessions.models): read there at run time.
    from clerk_sessions.models import (
        CreateSessionRequestBody,
        RawResponse,
        RefreshSessionRequestBody,
        SessionPage,
        SessionRefresh,
        SessionToken,
    )

__all__ = ["AsyncSessions", "path_segment"]

T = TypeVar("T")
# `list` is an operation's name inside the class: this is the type.
_SessionList: TypeAlias = "list[Session]"


def _decode_session_for(session_id: str) -> Callable[[bytes], Session]:
    """A decoder that also checks the answer is for ``session_id``.

    A connection that got out of step (a proxy that mixed up answers, a request
    smuggled in front of ours) would otherwise hand over another session as this one.
    """

    def decode_checked(body: bytes) -> Session:
        session = decode.decode_session(body)
        if session.id != session_id:
            raise AnswerMismatch(
                f"asked for session {session_id!r} but the answer is for {session.id!r}; "
                "the connection that carried it is out of step and was closed"
            )
        return session

    return decode_checked


def _decode_list(body: bytes) -> list[Session]:
    return decode.decode_session_page(body).data


def path_segment(name: str, value: object) -> str:
    """Percent-encode one path parameter so that no value can reach another path."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if value in ("", ".", ".."):
        raise ValueError(f"{name} must be a non-empty id other than '.' and '..', got {value!r}")
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid text: {value!r}") from None


def _session_path(session_id: str, suffix: str = "") -> str:
    return "/sessions/" + path_segment("session_id", session_id) + suffix


def _template_path(session_id: str, template_name: str) -> str:
    return _session_path(session_id, "/tokens/" + path_segment("template_name", template_name))


def _warn_verify() -> None:
    warnings.warn(
        "sessions.verify() is deprecated and removed from Clerk's API since 2025-04-10; "
        "verify session tokens without a network call with clerk.verify_token()",
        DeprecationWarning,
        # warn <- _warn_verify <- _verify_request <- verify (plain or raw) <- the caller
        stacklevel=4,
    )


def _gone(exc: GoneError, hint: str) -> GoneError:
    return GoneError(
        status_code=exc.status_code,
        errors=exc.errors,
        clerk_trace_id=exc.clerk_trace_id,
        headers=exc.headers,
        body=exc.body,
        hint=hint,
    )


class _Request(Generic[T]):
    """One operation's request, as its builder says it: what the plain operation and its
    ``with_raw_response`` form both send.

    ``operation`` names it and gives its method; ``gone_hint``, when set, is what a 410
    means for this request, said on the `GoneError`.
    """

    __slots__ = (
        "api_version",
        "decode",
        "gone_hint",
        "json_body",
        "operation",
        "path",
        "replay_safe",
    )

    def __init__(
        self,
        operation: Operation,
        path: str,
        decode: Callable[[bytes], T],
        *,
        replay_safe: bool,
        json_body: Any = None,
        api_version: str | None = None,
        gone_hint: str | None = None,
    ) -> None:
        self.operation = operation
        self.path = path
        self.decode = decode
        self.replay_safe = replay_safe
        self.json_body = json_body
        self.api_version = api_version
        self.gone_hint = gone_hint


class AsyncSessions(Paging, BulkRevocation):
    """Operations on sessions. Reach it as ``clerk.sessions``.

    Every operation also takes the official SDK's per-call options: ``retries`` (UNSET:
    the client's policy; None: no retries), ``server_url``, ``timeout_ms`` and
    ``http_headers`` (added to the request; one that would replace ``Authorization``,
    ``Clerk-API-Version`` or ``User-Agent`` raises `ValueError` before any I/O).
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.with_raw_response = AsyncSessionsWithRawResponse(self)

    # ------------------------------------------------------------- one request each

    async def list(
        self,
        *,
        client_id: str | None = None,
        user_id: str | None = None,
        status: QueryParamStatus | str | None = None,
        paginated: bool | None = None,
        limit: int | None = None,
        offset: int | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> list[Session]:
        """List all sessions.

        Returns a list of sessions matching the provided criteria, sorted by creation
        date, the newest first. At least one of ``client_id`` or ``user_id`` should be
        provided. ``status`` takes a `QueryParamStatus` or its string value. ``limit``
        and ``offset`` page through the results; see ``list_page`` for the total count
        and ``iterate`` for every match.
        """
        return await self._send(
            self._list_request(client_id, user_id, status, paginated, limit, offset),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    async def list_page(
        self,
        *,
        client_id: str | None = None,
        user_id: str | None = None,
        status: QueryParamStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """One page of sessions with the total count (``paginated=true``).

        ``total_count`` is None if the server answered without it.
        """
        return await self._send(
            self._list_page_request(client_id, user_id, status, limit, offset),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    async def create(
        self,
        request: CreateSessionRequestBody | Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        active_organization_id: str | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> Session:
        """Create a new active session for the provided user ID.

        This operation is intended only for use in testing, and is not available for
        production instances. Pass ``request={"user_id": ...}`` (the seed's form), a
        `CreateSessionRequestBody`, or the keywords.
        """
        return await self._send(
            self._create_request(request, user_id, active_organization_id),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    async def get(
        self,
        session_id: str,
        *,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> Session:
        """Retrieve the details of a session."""
        return await self._send(
            self._get_request(session_id), retries, server_url, timeout_ms, http_headers
        )

    async def revoke(
        self,
        session_id: str,
        *,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> Session:
        """Revoke a session.

        Sets the status of a session as "revoked", which is an unauthenticated state. In
        multi-session mode, a revoked session will still be returned along with its
        client object, however the user will need to sign in again.
        """
        return await self._send(
            self._revoke_request(session_id), retries, server_url, timeout_ms, http_headers
        )

    async def verify(
        self,
        session_id: str,
        *,
        token: str | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> Session:
        """Verify a session. Deprecated: use networkless ``verify_token`` instead.

        Returns the session if it is authenticated, otherwise raises. The endpoint was
        removed in API version 2025-04-10, so this request is sent with
        ``Clerk-API-Version: 2025-03-12``; an instance that no longer serves it answers
        410, raised as `GoneError`.
        """
        return await self._send(
            self._verify_request(session_id, token), retries, server_url, timeout_ms, http_headers
        )

    async def create_token(
        self,
        session_id: str,
        *,
        expires_in_seconds: float | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> SessionToken:
        """Create a session token: a JSON Web Token (JWT) based on a session.

        ``expires_in_seconds`` overrides the default session token lifetime (whole
        seconds; a float is rounded).
        """
        return await self._send(
            self._create_token_request(session_id, expires_in_seconds),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    async def create_token_from_template(
        self,
        session_id: str,
        template_name: str,
        *,
        expires_in_seconds: float | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> SessionToken:
        """Create a session token from a JWT template.

        Creates a JSON Web Token (JWT) based on a session and a JWT template name defined
        for your instance (e.g. ``custom_hasura``).
        """
        return await self._send(
            self._create_token_from_template_request(session_id, template_name, expires_in_seconds),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    async def refresh(
        self,
        session_id: str,
        request: RefreshSessionRequestBody | Mapping[str, Any] | None = None,
        *,
        expired_token: str | None = None,
        refresh_token: str | None = None,
        request_origin: str | None = None,
        request_headers: Mapping[str, Any] | None = None,
        format: str | None = None,
        request_originating_ip: str | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> SessionRefresh:
        """Refresh a session by creating a new session token.

        Pass a `RefreshSessionRequestBody` (or a dict) as ``request``, or the fields as
        keywords (the official SDK's form). A 401 is returned when there are validation
        errors, which signals the SDKs to fall back to the handshake flow. The answer is
        a token or cookie directives, per ``format``.
        """
        return await self._send(
            self._refresh_request(
                session_id,
                request,
                expired_token=expired_token,
                refresh_token=refresh_token,
                request_origin=request_origin,
                request_headers=request_headers,
                format=format,
                request_originating_ip=request_originating_ip,
            ),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    # ------------------------------------------------------------ sending requests

    async def _send(
        self,
        request: _Request[T],
        retries: RetryConfig | Unset | None,
        server_url: str | None,
        timeout_ms: int | None,
        http_headers: Mapping[str, str] | None,
    ) -> T:
        """Send ``request`` with the per-call options; its decoded answer."""
        result: T = await self._call(request, retries, server_url, timeout_ms, http_headers)
        return result

    async def _send_raw(
        self,
        request: _Request[T],
        retries: RetryConfig | Unset | None,
        server_url: str | None,
        timeout_ms: int | None,
        http_headers: Mapping[str, str] | None,
    ) -> RawResponse[T]:
        """`_send`, answering with the raw response (``with_raw_response``)."""
        raw: RawResponse[T] = await self._call(
            request, retries, server_url, timeout_ms, http_headers, raw=True
        )
        return raw

    async def _call(
        self,
        request: _Request[Any],
        retries: RetryConfig | Unset | None,
        server_url: str | None,
        timeout_ms: int | None,
        http_headers: Mapping[str, str] | None,
        raw: bool = False,
    ) -> Any:
        try:
            return await self._transport.request(
                request.operation.method,
                request.path,
                request.decode,
                replay_safe=request.replay_safe,
                retries=retries,
                server_url=server_url,
                timeout_ms=timeout_ms,
                http_headers=http_headers,
                json_body=request.json_body,
                api_version=request.api_version,
                raw=raw,
                operation=request.operation,
            )
        except GoneError as exc:
            if request.gone_hint is None:
                raise
            raise _gone(exc, request.gone_hint) from exc

    # ------------------------------------------------------------- request builders

    def _list_request(
        self,
        client_id: str | None,
        user_id: str | None,
        status: QueryParamStatus | str | None,
        paginated: bool | None,
        limit: int | None,
        offset: int | None,
    ) -> _Request[_SessionList]:
        path = list_path(client_id, user_id, status, paginated, limit, offset)
        return _Request(op.LIST, path, _decode_list, replay_safe=True)

    def _list_page_request(
        self,
        client_id: str | None,
        user_id: str | None,
        status: QueryParamStatus | str | None,
        limit: int | None,
        offset: int | None,
    ) -> _Request[SessionPage]:
        path = list_path(client_id, user_id, status, True, limit, offset)
        return _Request(op.LIST_PAGE, path, decode.decode_session_page, replay_safe=True)

    def _create_request(
        self,
        request: CreateSessionRequestBody | Mapping[str, Any] | None,
        user_id: str | None,
        active_organization_id: str | None,
    ) -> _Request[Session]:
        body = bodies.create_body(request, user_id, active_organization_id)
        return _Request(
            op.CREATE, "/sessions", decode.decode_session, replay_safe=False, json_body=body
        )

    def _get_request(self, session_id: str) -> _Request[Session]:
        # The answer must be the session asked for (`_decode_session_for`).
        path = _session_path(session_id)
        return _Request(op.GET, path, _decode_session_for(session_id), replay_safe=True)

    def _revoke_request(self, session_id: str) -> _Request[Session]:
        path = _session_path(session_id, "/revoke")
        return _Request(op.REVOKE, path, _decode_session_for(session_id), replay_safe=True)

    def _verify_request(self, session_id: str, token: str | None) -> _Request[Session]:
        _warn_verify()
        return _Request(
            op.VERIFY,
            _session_path(session_id, "/verify"),
            _decode_session_for(session_id),
            replay_safe=True,
            json_body=bodies.verify_body(token),
            api_version=VERIFY_API_VERSION,
            gone_hint="the verify endpoint is gone; verify the session token locally "
            "with clerk.verify_token(token)",
        )

    def _create_token_request(
        self, session_id: str, expires_in_seconds: float | None
    ) -> _Request[SessionToken]:
        path = _session_path(session_id, "/tokens")
        body = bodies.expires_body(expires_in_seconds)
        return _Request(
            op.CREATE_TOKEN, path, bodies.decode_token, replay_safe=True, json_body=body
        )

    def _create_token_from_template_request(
        self, session_id: str, template_name: str, expires_in_seconds: float | None
    ) -> _Request[SessionToken]:
        path = _template_path(session_id, template_name)
        body = bodies.expires_body(expires_in_seconds)
        return _Request(
            op.CREATE_TOKEN_FROM_TEMPLATE,
            path,
            bodies.decode_token,
            replay_safe=True,
            json_body=body,
        )

    def _refresh_request(
        self,
        session_id: str,
        request: RefreshSessionRequestBody | Mapping[str, Any] | None,
        **fields: Any,
    ) -> _Request[SessionRefresh]:
        path = _session_path(session_id, "/refresh")
        body = bodies.refresh_body(request, **fields)
        return _Request(op.REFRESH, path, bodies.decode_refresh, replay_safe=False, json_body=body)
