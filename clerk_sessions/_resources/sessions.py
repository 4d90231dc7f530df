"""The sessions operations: ``clerk.sessions``."""

from __future__ import annotations

import functools
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast
from urllib.parse import quote, urlencode

from clerk_sessions import _decode, models
from clerk_sessions._config import UNSET, VERIFY_API_VERSION, RetryConfig, Unset
from clerk_sessions._errors import AnswerMismatch, GoneError
from clerk_sessions._http.transport import Transport
from clerk_sessions._options import call_options
from clerk_sessions.models import QueryParamStatus, Session

if TYPE_CHECKING:
    import cattrs

    # At run time these are read from `models` where used: they are defined on first use.
    from clerk_sessions.models import (
        BulkRevokeResult,
        CreateSessionRequestBody,
        RawResponse,
        RefreshSessionRequestBody,
        SessionPage,
        SessionRefresh,
        SessionToken,
    )

__all__ = ["AsyncSessions", "AsyncSessionsWithRawResponse", "SessionIterator", "path_segment"]

_MAX_PAGE_SIZE = 500

T = TypeVar("T")


@functools.cache
def _request_converter() -> cattrs.Converter:
    # Request bodies given as dicts are checked strictly, so a typo fails before any I/O.
    # Built on the first such body, not at import: most programs never pass one.
    from clerk_sessions import _serde

    return _serde.make_converter(detailed=True, forbid_extra_keys=True)


def _request_body(value: object, cls: type[Any], what: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a {cls.__name__} or a dict, got {type(value).__name__}")
    data: dict[str, Any] = dict(cast("Mapping[str, Any]", value))
    if "format_" in data and "format" not in data:  # the seed SDK's spelling
        data["format"] = data.pop("format_")
    from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
    from cattrs.v import transform_error

    try:
        return _request_converter().structure(data, cls)
    except (ClassValidationError, ForbiddenExtraKeysError) as exc:
        problems = "; ".join(transform_error(exc, path=what))
        raise TypeError(f"invalid {what}: {problems}") from None


def _status_value(status: QueryParamStatus | str | None) -> str | None:
    if status is None or isinstance(status, QueryParamStatus):
        return None if status is None else status.value
    if isinstance(status, str):
        return status
    raise TypeError(f"status must be a QueryParamStatus or a string, got {type(status).__name__}")


def _int_param(name: str, value: object, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _expires_body(expires_in_seconds: float | None) -> dict[str, int] | None:
    if expires_in_seconds is None:
        return None
    if isinstance(expires_in_seconds, bool) or not isinstance(expires_in_seconds, (int, float)):
        raise TypeError(
            f"expires_in_seconds must be a number, got {type(expires_in_seconds).__name__}"
        )
    if expires_in_seconds != expires_in_seconds or expires_in_seconds in (
        float("inf"),
        float("-inf"),
    ):
        raise ValueError(f"expires_in_seconds must be finite, got {expires_in_seconds!r}")
    # The API takes whole seconds; the seed's examples pass floats such as 6005.84.
    return {"expires_in_seconds": round(expires_in_seconds)}


def _decode_session_for(session_id: str) -> Callable[[bytes], Session]:
    """A decoder that also checks the answer is for ``session_id``.

    A connection that got out of step (a proxy that mixed up answers, a request
    smuggled in front of ours) would otherwise hand over another session as this one.
    """

    def decode(body: bytes) -> Session:
        session = _decode.decode_session(body)
        if session.id != session_id:
            raise AnswerMismatch(
                f"asked for session {session_id!r} but the answer is for {session.id!r}; "
                "the connection that carried it is out of step and was closed"
            )
        return session

    return decode


def _decode_list(body: bytes) -> list[Session]:
    return _decode.decode_session_page(body).data


def _decode_token(body: bytes) -> SessionToken:
    from clerk_sessions import _serde  # cattrs: sessions alone are read without it (_decode)

    result: SessionToken = _serde.structure(body, _decode.loads(body), models.SessionToken)
    return result


def _decode_refresh(body: bytes) -> SessionRefresh:
    from clerk_sessions import _serde

    result: SessionRefresh = _serde.structure(body, _decode.loads(body), models.SessionRefresh)
    return result


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


def _query_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def with_query(path: str, query: Mapping[str, object]) -> str:
    """``path`` with the query string of the parameters that are not None."""
    pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
    return path + "?" + urlencode(pairs) if pairs else path


def _session_path(session_id: str, suffix: str = "") -> str:
    return "/sessions/" + path_segment("session_id", session_id) + suffix


def _template_path(session_id: str, template_name: str) -> str:
    return _session_path(session_id, "/tokens/" + path_segment("template_name", template_name))


def _list_path(
    client_id: str | None,
    user_id: str | None,
    status: QueryParamStatus | str | None,
    paginated: bool | None,
    limit: int | None,
    offset: int | None,
) -> str:
    if paginated is not None and not isinstance(paginated, bool):
        raise TypeError(f"paginated must be a bool, got {type(paginated).__name__}")
    for name, value in (("client_id", client_id), ("user_id", user_id)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return with_query(
        "/sessions",
        {
            "client_id": client_id,
            "user_id": user_id,
            "status": _status_value(status),
            "paginated": paginated,
            "limit": _int_param("limit", limit, 1),
            "offset": _int_param("offset", offset, 0),
        },
    )


def _create_body(
    request: CreateSessionRequestBody | Mapping[str, Any] | None,
    user_id: str | None,
    active_organization_id: str | None,
) -> Any:
    if request is not None:
        if user_id is not None or active_organization_id is not None:
            raise TypeError("create() takes either request= or keywords, not both")
        body = _request_body(request, models.CreateSessionRequestBody, "request")
    elif user_id is None:
        raise TypeError("create() needs user_id= (or request={'user_id': ...})")
    else:
        body = _request_body(
            {"user_id": user_id, "active_organization_id": active_organization_id},
            models.CreateSessionRequestBody,
            "request",
        )
    from clerk_sessions import _serde

    return _serde.unstructure_body(body)


def _refresh_body(
    request: RefreshSessionRequestBody | Mapping[str, Any] | None, **fields: Any
) -> Any:
    given = {k: v for k, v in fields.items() if v is not None}
    if request is not None:
        if given:
            raise TypeError("refresh() takes either request= or keywords, not both")
        body = _request_body(request, models.RefreshSessionRequestBody, "request")
    else:
        body = _request_body(given, models.RefreshSessionRequestBody, "request")
    from clerk_sessions import _serde

    return _serde.unstructure_body(body)


def _verify_body(token: str | None) -> dict[str, str] | None:
    if token is not None and not isinstance(token, str):
        raise TypeError(f"token must be a string, got {type(token).__name__}")
    return None if token is None else {"token": token}


def _warn_verify() -> None:
    warnings.warn(
        "sessions.verify() is deprecated and removed from Clerk's API since 2025-04-10; "
        "verify session tokens without a network call with clerk.verify_token()",
        DeprecationWarning,
        # warn <- _warn_verify <- _verify_request <- verify <- the user's call
        stacklevel=4,
    )


def _verify_gone(exc: GoneError) -> GoneError:
    return GoneError(
        status_code=exc.status_code,
        errors=exc.errors,
        clerk_trace_id=exc.clerk_trace_id,
        headers=exc.headers,
        body=exc.body,
        hint="the verify endpoint is gone; verify the session token locally "
        "with clerk.verify_token(token)",
    )


class _Request(Generic[T]):
    """One operation's request, built by one function that both the plain operation and
    its ``with_raw_response`` form send: what is asked lives in one place."""

    __slots__ = ("api_version", "decode", "json_body", "method", "path", "replay_safe")

    def __init__(
        self,
        method: str,
        path: str,
        decode: Callable[[bytes], T],
        *,
        replay_safe: bool,
        json_body: Any = None,
        api_version: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.decode = decode
        self.replay_safe = replay_safe
        self.json_body = json_body
        self.api_version = api_version


async def _send(
    transport: Transport,
    request: _Request[T],
    retries: RetryConfig | Unset | None,
    server_url: str | None,
    timeout_ms: int | None,
    http_headers: Mapping[str, str] | None,
) -> T:
    return await transport.request(
        request.method,
        request.path,
        request.decode,
        replay_safe=request.replay_safe,
        retries=retries,
        server_url=server_url,
        timeout_ms=timeout_ms,
        http_headers=http_headers,
        json_body=request.json_body,
        api_version=request.api_version,
    )


async def _send_raw(
    transport: Transport,
    request: _Request[T],
    retries: RetryConfig | Unset | None,
    server_url: str | None,
    timeout_ms: int | None,
    http_headers: Mapping[str, str] | None,
) -> RawResponse[T]:
    return await transport.request(
        request.method,
        request.path,
        request.decode,
        replay_safe=request.replay_safe,
        retries=retries,
        server_url=server_url,
        timeout_ms=timeout_ms,
        http_headers=http_headers,
        json_body=request.json_body,
        api_version=request.api_version,
        raw=True,
    )


def _list_request(
    client_id: str | None,
    user_id: str | None,
    status: QueryParamStatus | str | None,
    paginated: bool | None,
    limit: int | None,
    offset: int | None,
) -> _Request[list[Session]]:
    path = _list_path(client_id, user_id, status, paginated, limit, offset)
    return _Request("GET", path, _decode_list, replay_safe=True)


def _list_page_request(
    client_id: str | None,
    user_id: str | None,
    status: QueryParamStatus | str | None,
    limit: int | None,
    offset: int | None,
) -> _Request[SessionPage]:
    path = _list_path(client_id, user_id, status, True, limit, offset)
    return _Request("GET", path, _decode.decode_session_page, replay_safe=True)


def _create_request(
    request: CreateSessionRequestBody | Mapping[str, Any] | None,
    user_id: str | None,
    active_organization_id: str | None,
) -> _Request[Session]:
    body = _create_body(request, user_id, active_organization_id)
    return _Request("POST", "/sessions", _decode.decode_session, replay_safe=False, json_body=body)


def _session_request(session_id: str, suffix: str = "") -> _Request[Session]:
    # get ("") and revoke ("/revoke"): the answer must be the session asked for.
    method = "POST" if suffix else "GET"
    path = _session_path(session_id, suffix)
    return _Request(method, path, _decode_session_for(session_id), replay_safe=True)


def _verify_request(session_id: str, token: str | None) -> _Request[Session]:
    _warn_verify()
    return _Request(
        "POST",
        _session_path(session_id, "/verify"),
        _decode_session_for(session_id),
        replay_safe=True,
        json_body=_verify_body(token),
        api_version=VERIFY_API_VERSION,
    )


def _token_request(path: str, expires_in_seconds: float | None) -> _Request[SessionToken]:
    body = _expires_body(expires_in_seconds)
    return _Request("POST", path, _decode_token, replay_safe=True, json_body=body)


def _refresh_request(session_id: str, body: dict[str, Any]) -> _Request[SessionRefresh]:
    path = _session_path(session_id, "/refresh")
    return _Request("POST", path, _decode_refresh, replay_safe=False, json_body=body)


class AsyncSessions:
    """Operations on sessions. Reach it as ``clerk.sessions``.

    Every operation also takes the official SDK's per-call options: ``retries`` (UNSET:
    the client's policy; None: no retries), ``server_url``, ``timeout_ms`` and
    ``http_headers`` (added to the request; one that would replace ``Authorization``,
    ``Clerk-API-Version`` or ``User-Agent`` raises `ValueError` before any I/O).
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.with_raw_response = AsyncSessionsWithRawResponse(self)

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
        return await _send(
            self._transport,
            _list_request(client_id, user_id, status, paginated, limit, offset),
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
        return await _send(
            self._transport,
            _list_page_request(client_id, user_id, status, limit, offset),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    def iterate(
        self,
        *,
        client_id: str | None = None,
        user_id: str | None = None,
        status: QueryParamStatus | str | None = None,
        page_size: int = 100,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> SessionIterator:
        """Every session that matches, fetched page by page as you iterate.

        ``async for session in clerk.sessions.iterate(user_id=...)``. Nothing is fetched
        until the first item is asked for, and stopping early leaves nothing running.
        Each session is yielded once, even if shifting pages show it twice, and the
        iteration ends at a page that brings no session not seen before (so a server
        that ignores ``offset`` cannot make it loop).
        """
        size = _int_param("page_size", page_size, 1)
        if size is None or size > _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE_SIZE}, got {page_size!r}")
        # Validate the filters and options now, not at the first `__anext__`.
        _list_path(client_id, user_id, status, True, size, 0)
        options = call_options(
            retries=retries, server_url=server_url, timeout_ms=timeout_ms, http_headers=http_headers
        )
        return SessionIterator(
            self,
            client_id=client_id,
            user_id=user_id,
            status=status,
            page_size=size,
            options=options,
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
        return await _send(
            self._transport,
            _create_request(request, user_id, active_organization_id),
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
        return await _send(
            self._transport,
            _session_request(session_id),
            retries,
            server_url,
            timeout_ms,
            http_headers,
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
        return await _send(
            self._transport,
            _session_request(session_id, "/revoke"),
            retries,
            server_url,
            timeout_ms,
            http_headers,
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
        request = _verify_request(session_id, token)
        try:
            return await _send(
                self._transport, request, retries, server_url, timeout_ms, http_headers
            )
        except GoneError as exc:
            raise _verify_gone(exc) from exc

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
        return await _send(
            self._transport,
            _token_request(_session_path(session_id, "/tokens"), expires_in_seconds),
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
        return await _send(
            self._transport,
            _token_request(_template_path(session_id, template_name), expires_in_seconds),
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
        body = _refresh_body(
            request,
            expired_token=expired_token,
            refresh_token=refresh_token,
            request_origin=request_origin,
            request_headers=request_headers,
            format=format,
            request_originating_ip=request_originating_ip,
        )
        return await _send(
            self._transport,
            _refresh_request(session_id, body),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    async def revoke_many(
        self,
        session_ids: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int = 8,
        on_progress: Callable[[int, int | None], object] | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> BulkRevokeResult:
        """Revoke many sessions, at most ``concurrency`` requests at a time.

        ``session_ids`` is any iterable or async iterable of ids (a generator of a million
        ids is fine: ids are drawn as workers free up, so memory in flight is bounded by
        ``concurrency``). An id is never sent twice: duplicates are skipped, which means
        the distinct ids seen so far are kept (the ids only). Each request uses the retry
        policy (``retries``), the other per-call options, and the client's `RateLimit`,
        which a 429 pauses for every worker.

        Returns a `BulkRevokeResult` holding every distinct id exactly once: in
        ``revoked`` (id -> the `Session` as the API returned it) or in ``failed`` (id ->
        the exception its last attempt raised, once its retries ran out). A session
        that was already revoked counts as revoked; so does one that had already ended
        (the API answers the revoke with the session unchanged: it is signed out).

        Any exception one id raises is that id's failure, and the others go on. A
        failure is kept compact: without its traceback, chained exceptions or response
        body (``.body`` is empty), so 20,000 failures take a few MB and the result can be
        pickled.

        ``on_progress(done, total)`` is called after each id finishes; ``total`` is the
        number of distinct ids for a collection, None for an iterator.

        Errors and early stops:

        - Bad arguments raise before any request: ``concurrency`` not an integer >= 1,
          ``on_progress`` not callable, a single string instead of an iterable, a
          collection holding a non-string id (`TypeError`), or a bad per-call option.
        - If an iterator yields a non-string id (`TypeError`) or raises, or
          ``on_progress`` raises, no further id is started, the requests in flight
          finish, and that exception propagates with the result so far attached as its
          ``bulk_result`` attribute.
        - If the call is cancelled, the requests in flight are abandoned at once and the
          cancellation propagates, with the result so far attached the same way: the
          ids whose request was in flight are in neither map (the server may or may not
          have revoked them), and ids never drawn are not in it.
        """
        # Loaded here: a process that never bulk-revokes (a one-shot `get`) skips it.
        from clerk_sessions._resources import bulk

        return await bulk.revoke_many(
            self,
            session_ids,
            concurrency=concurrency,
            on_progress=on_progress,
            **call_options(
                retries=retries,
                server_url=server_url,
                timeout_ms=timeout_ms,
                http_headers=http_headers,
            ),
        )

    async def revoke_all(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        concurrency: int = 8,
        on_progress: Callable[[int, int | None], object] | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> BulkRevokeResult:
        """Revoke every active session of a user (``user_id=``) or of a client
        (``client_id=``); exactly one of them is required.

        Lists the active sessions, then revokes them with `revoke_many`, then lists
        again, until a listing shows no active session it has not handled (sessions that
        change while it pages shift the pages; listing again catches what they hid). A
        session that failed is not tried again. ``on_progress(done, total)`` counts
        across those rounds (``total`` is the number of sessions found so far). Errors,
        early stops and the result are as for `revoke_many`.
        """
        from clerk_sessions._resources import bulk

        return await bulk.revoke_all(
            self,
            user_id=user_id,
            client_id=client_id,
            concurrency=concurrency,
            on_progress=on_progress,
            **call_options(
                retries=retries,
                server_url=server_url,
                timeout_ms=timeout_ms,
                http_headers=http_headers,
            ),
        )


class AsyncSessionsWithRawResponse:
    """The single-request operations of ``clerk.sessions``, answering with the raw
    response: ``clerk.sessions.with_raw_response.get(...)``.

    Each takes the same arguments as the plain operation and returns a `RawResponse`
    (status, headers, trace id, body) whose ``parse()`` returns what the plain operation
    returns. Errors raise exactly as the plain operation's do.
    """

    def __init__(self, sessions: AsyncSessions) -> None:
        self._transport = sessions._transport  # pyright: ignore[reportPrivateUsage]

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
    ) -> RawResponse[list[Session]]:
        """``sessions.list`` as the raw response; ``parse()`` gives the sessions."""
        return await _send_raw(
            self._transport,
            _list_request(client_id, user_id, status, paginated, limit, offset),
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
    ) -> RawResponse[SessionPage]:
        """``sessions.list_page`` as the raw response; ``parse()`` gives the page."""
        return await _send_raw(
            self._transport,
            _list_page_request(client_id, user_id, status, limit, offset),
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
    ) -> RawResponse[Session]:
        """``sessions.create`` as the raw response; ``parse()`` gives the `Session`."""
        return await _send_raw(
            self._transport,
            _create_request(request, user_id, active_organization_id),
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
    ) -> RawResponse[Session]:
        """``sessions.get`` as the raw response; ``parse()`` gives the `Session`."""
        return await _send_raw(
            self._transport,
            _session_request(session_id),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )

    async def revoke(
        self,
        session_id: str,
        *,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> RawResponse[Session]:
        """``sessions.revoke`` as the raw response; ``parse()`` gives the `Session`."""
        return await _send_raw(
            self._transport,
            _session_request(session_id, "/revoke"),
            retries,
            server_url,
            timeout_ms,
            http_headers,
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
    ) -> RawResponse[Session]:
        """``sessions.verify`` (deprecated) as the raw response; ``parse()`` gives the
        `Session`."""
        request = _verify_request(session_id, token)
        try:
            return await _send_raw(
                self._transport, request, retries, server_url, timeout_ms, http_headers
            )
        except GoneError as exc:
            raise _verify_gone(exc) from exc

    async def create_token(
        self,
        session_id: str,
        *,
        expires_in_seconds: float | None = None,
        retries: RetryConfig | Unset | None = UNSET,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
    ) -> RawResponse[SessionToken]:
        """``sessions.create_token`` as the raw response; ``parse()`` gives the
        `SessionToken`."""
        return await _send_raw(
            self._transport,
            _token_request(_session_path(session_id, "/tokens"), expires_in_seconds),
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
    ) -> RawResponse[SessionToken]:
        """``sessions.create_token_from_template`` as the raw response; ``parse()`` gives
        the `SessionToken`."""
        return await _send_raw(
            self._transport,
            _token_request(_template_path(session_id, template_name), expires_in_seconds),
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
    ) -> RawResponse[SessionRefresh]:
        """``sessions.refresh`` as the raw response; ``parse()`` gives the
        `SessionRefresh`."""
        body = _refresh_body(
            request,
            expired_token=expired_token,
            refresh_token=refresh_token,
            request_origin=request_origin,
            request_headers=request_headers,
            format=format,
            request_originating_ip=request_originating_ip,
        )
        return await _send_raw(
            self._transport,
            _refresh_request(session_id, body),
            retries,
            server_url,
            timeout_ms,
            http_headers,
        )


class SessionIterator:
    """An async iterator over every matching session, one page request at a time.

    Holds no open response between pages, so stopping early (``break``) needs no cleanup;
    ``aclose()`` and ``async with`` are there for symmetry with async generators. Keeps
    the ids it has yielded, to skip repeats and to stop on a page of nothing new.
    """

    def __init__(
        self,
        sessions: AsyncSessions,
        *,
        client_id: str | None,
        user_id: str | None,
        status: QueryParamStatus | str | None,
        page_size: int,
        options: Mapping[str, Any],
    ) -> None:
        self._sessions = sessions
        self._client_id = client_id
        self._user_id = user_id
        self._status = status
        self._page_size = page_size
        self._options = options
        self._offset = 0
        self._buffer: list[Session] = []
        self._exhausted = False
        self._seen: set[str] = set()

    def __aiter__(self) -> AsyncIterator[Session]:
        return self

    async def __anext__(self) -> Session:
        if not self._buffer:
            if self._exhausted:
                raise StopAsyncIteration
            page = await self._sessions.list_page(
                client_id=self._client_id,
                user_id=self._user_id,
                status=self._status,
                limit=self._page_size,
                offset=self._offset,
                **self._options,
            )
            self._offset += len(page.data)
            if len(page.data) < self._page_size or (
                page.total_count is not None and self._offset >= page.total_count
            ):
                self._exhausted = True
            fresh: list[Session] = []
            for session in page.data:
                if session.id not in self._seen:
                    self._seen.add(session.id)
                    fresh.append(session)
            if not fresh:
                # Nothing new: the end, or a server that ignores offset.
                self._exhausted = True
                raise StopAsyncIteration
            fresh.reverse()
            self._buffer = fresh
        return self._buffer.pop()

    async def aclose(self) -> None:
        """Stop the iteration; later calls raise `StopAsyncIteration`."""
        self._buffer = []
        self._exhausted = True

    async def __aenter__(self) -> SessionIterator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
