"""Listing sessions: a listing's query, and ``iterate``, which pages through one.

`list_path` is the one place that checks a listing's filters and writes its query, for
``list``, ``list_page`` and ``iterate`` alike; `Paging` gives ``clerk.sessions`` its
``iterate`` (`clerk_sessions._resources.sessions.AsyncSessions` inherits it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlencode

from clerk_sessions._config import UNSET, RetryConfig, Unset
from clerk_sessions._options import call_options
from clerk_sessions.models import QueryParamStatus, Session

if TYPE_CHECKING:
    # Defined on first use (clerk_sessions.models): a process that never pages skips it.
    from clerk_sessions.models import SessionPage

__all__ = ["PageSource", "Paging", "SessionIterator", "int_param", "list_path", "status_value"]

_MAX_PAGE_SIZE = 500


class PageSource(Protocol):
    """Where the pages come from: ``sessions.list_page``."""

    async def list_page(
        self,
        *,
        client_id: str | None = ...,
        user_id: str | None = ...,
        status: QueryParamStatus | str | None = ...,
        limit: int | None = ...,
        offset: int | None = ...,
        retries: RetryConfig | Unset | None = ...,
        server_url: str | None = ...,
        timeout_ms: int | None = ...,
        http_headers: Mapping[str, str] | None = ...,
    ) -> SessionPage: ...


class SessionIterator:
    """An async iterator over every matching session, one page request at a time.

    Holds no open response between pages, so stopping early (``break``) needs no cleanup;
    ``aclose()`` and ``async with`` are there for symmetry with async generators. Keeps
    the ids it has yielded, to skip repeats and to stop on a page of nothing new.
    """

    def __init__(
        self,
        sessions: PageSource,
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


def status_value(status: QueryParamStatus | str | None) -> str | None:
    if status is None or isinstance(status, QueryParamStatus):
        return None if status is None else status.value
    if isinstance(status, str):
        return status
    raise TypeError(f"status must be a QueryParamStatus or a string, got {type(status).__name__}")


def int_param(name: str, value: object, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _query_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _with_query(path: str, query: Mapping[str, object]) -> str:
    """``path`` with the query string of the parameters that are not None."""
    pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
    return path + "?" + urlencode(pairs) if pairs else path


def list_path(
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
    return _with_query(
        "/sessions",
        {
            "client_id": client_id,
            "user_id": user_id,
            "status": status_value(status),
            "paginated": paginated,
            "limit": int_param("limit", limit, 1),
            "offset": int_param("offset", offset, 0),
        },
    )


class Paging:
    """``iterate``, the paging operation of ``clerk.sessions``."""

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
        size = int_param("page_size", page_size, 1)
        if size is None or size > _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE_SIZE}, got {page_size!r}")
        # Validate the filters and options now, not at the first `__anext__`.
        list_path(client_id, user_id, status, True, size, 0)
        options = call_options(
            retries=retries, server_url=server_url, timeout_ms=timeout_ms, http_headers=http_headers
        )
        return SessionIterator(
            cast("PageSource", self),
            client_id=client_id,
            user_id=user_id,
            status=status,
            page_size=size,
            options=options,
        )
