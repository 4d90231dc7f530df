"""Response bodies to sessions on the hot path, without importing cattrs.

``get``, ``list`` and the bulk operations decode nothing but sessions. Their structuring
functions are written ahead of time from the models (`clerk_sessions._codec.generated`,
by ``scripts/gen_decoders.py`` with the same writer the converter runs for every other
model), so a process that only reads sessions never imports cattrs or generates code:
about 15 ms of a 300 ms cold start here (benchmarks/bench_cold.py). The cattrs converter
(`clerk_sessions._codec.converter`) stays the single authority on what a body means: it
uses these same functions as its hooks for `Session` and `SessionTask`, and whenever they
refuse a body, its detailed converter is loaded to say where the body broke the schema.

With the fast paths off (``CLERK_SESSIONS_NO_FAST_PATHS``, `_config.FAST_PATHS`) every body
goes through the converter with cattrs' own hooks, and `json` parses it.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any, cast

from clerk_sessions import models
from clerk_sessions._config import FAST_PATHS
from clerk_sessions._errors import ResponseValidationError
from clerk_sessions.models import Session

__all__ = ["decode_session", "decode_session_page", "loads", "lossy", "session_from_data"]

# orjson (the ``fast`` extra) parses a body in about half the time of `json`. Where the
# two could disagree, the standard library decides: any body orjson refuses (NaN,
# Infinity, a UTF-8 BOM, UTF-16, lone surrogates, nesting beyond 1024) or whose
# sessions do not structure cleanly is decoded again with `json`, so the result and the
# error for every body are what `json` alone gives; see `_lossy` for the one value orjson
# accepts differently.
_fast_loads: Callable[[bytes], Any] | None = None
if FAST_PATHS:
    try:
        import orjson
    except ImportError:  # pragma: no cover - the tests run with the extra installed
        pass
    else:
        _fast_loads = orjson.loads


# ------------------------------------------------------------------- the hot path


def _first_session(data: Any, cls: Any) -> Session:
    _bind_structure_functions()
    return _structure_session(data, cls)


def _first_session_list(items: Any) -> list[Session]:
    _bind_structure_functions()
    return _structure_session_list(items)


def _bind_structure_functions() -> None:
    """Bind the structuring functions on first use: the generated ones (their module
    builds the builder classes as it loads), or cattrs' own with the fast paths off."""
    global _structure_session, _structure_session_list, _session_any_fields
    if FAST_PATHS:
        from clerk_sessions._codec import generated

        _structure_session = generated.structure_Session
        _session_any_fields = generated.ANY_FIELDS[Session]

        def structure_list(items: Any) -> list[Session]:
            return [generated.structure_Session(item) for item in items]

        _structure_session_list = structure_list
    else:
        from clerk_sessions._codec import converter

        _structure_session = converter.converter.get_structure_hook(Session)
        structure_many = converter.converter.get_structure_hook(list[Session])

        def structure_list_with_cattrs(items: Any) -> list[Session]:
            sessions: list[Session] = structure_many(items, list[Session])
            return sessions

        _structure_session_list = structure_list_with_cattrs
        _session_any_fields = converter.any_fields(Session)


_structure_session: Callable[[Any, Any], Session] = _first_session
_structure_session_list: Callable[[Any], list[Session]] = _first_session_list
_session_any_fields: tuple[str, ...] = ()


def loads(body: bytes) -> Any:
    """Decode a JSON body with the standard library, turning garbage into
    `ResponseValidationError`."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than the interpreter's recursion limit.
        raise ResponseValidationError([f"invalid JSON: {exc} @ $"], body=body) from None


_INT64 = float(2**63)


def lossy(value: Any) -> bool:
    """Whether ``value`` holds a float that orjson may have made of an integer.

    orjson reads an integer beyond 64 bits as the nearest float, where `json` keeps it
    exact; such a float is at least 2**63 in magnitude. A typed field refuses the float
    (so the standard library's way then decides); only values typed ``Any`` need this,
    and a session is searched through those fields only.
    """
    kind: type[Any] = type(cast(object, value))
    if kind is float:
        return not -_INT64 < value < _INT64
    if kind is dict:
        return any(lossy(item) for item in cast("dict[str, Any]", value).values())
    if kind is list or kind is tuple:
        return any(lossy(item) for item in cast("list[Any]", value))
    if kind is Session:
        return any(lossy(getattr(value, name)) for name in _session_any_fields)
    return False


def _fast_session(body: bytes) -> Session | None:
    """`decode_session` through orjson, or None where the standard library must decide."""
    assert _fast_loads is not None
    try:
        session = _structure_session(_fast_loads(body), Session)
    except Exception:
        return None
    return None if lossy(session) else session


def _fast_page(body: bytes) -> models.SessionPage | None:
    """`decode_session_page` through orjson, or None where the standard library must decide."""
    assert _fast_loads is not None
    try:
        data = _fast_loads(body)
        items: Any
        if type(data) is list:
            items, total = cast("Any", data), None
        else:
            items, total = data["data"], data.get("total_count")
            if total is not None and type(total) is not int:
                return None
        sessions = _structure_session_list(items)
    except Exception:
        return None
    fields = _session_any_fields
    if fields:
        # Mostly null (a session without an actor): filter() drops those in C.
        for value in filter(None, map(operator.attrgetter(*fields), sessions)):
            if lossy(value):
                return None
    return models.SessionPage(data=sessions, total_count=total)


def decode_session(body: bytes) -> Session:
    """A `Session` from a response body."""
    if _fast_loads is not None:
        fast = _fast_session(body)
        if fast is not None:
            return fast
    return session_from_data(loads(body), body)


def session_from_data(data: Any, body: bytes = b"") -> Session:
    """A `Session` from decoded JSON; ``body``, when there is one, goes into the error."""
    try:
        return _structure_session(data, Session)
    except Exception as exc:
        # The converter (and cattrs with it) loads only when a body breaks the schema.
        from clerk_sessions._codec.converter import validation_error

        raise validation_error(body, data, Session, exc) from None


def decode_session_page(body: bytes) -> models.SessionPage:
    """A page of sessions from either answer shape: the spec's bare array, or
    ``{"data": [...], "total_count": N}`` that the live API sends when paginated."""
    if _fast_loads is not None:
        fast = _fast_page(body)
        if fast is not None:
            return fast
    data = loads(body)
    items: Any
    total: Any
    if isinstance(data, list):
        items, total = cast("list[object]", data), None
        path_prefix = ""
    elif isinstance(data, dict) and "data" in data:
        page = cast("dict[str, Any]", data)
        items, total = page["data"], page.get("total_count")
        path_prefix = ".data"
        if total is not None and type(total) is not int:
            raise ResponseValidationError(
                [f"expected integer, got {type(total).__name__} @ $.total_count"], body=body
            )
    else:
        raise ResponseValidationError(["expected an array or an object with 'data' @ $"], body=body)
    try:
        sessions = _structure_session_list(items)
    except Exception as exc:
        from clerk_sessions._codec.converter import validation_error

        error = validation_error(body, items, list[Session], exc)
        if path_prefix:
            error = ResponseValidationError(
                [e.replace(" @ $", f" @ ${path_prefix}", 1) for e in error.errors], body=body
            )
        raise error from None
    return models.SessionPage(data=sessions, total_count=total)


# `models.Session.from_json` reads through these (the models never import the codec).
models._read_sessions_with(decode_session, session_from_data)  # pyright: ignore[reportPrivateUsage]
