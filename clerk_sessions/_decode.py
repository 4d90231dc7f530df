"""Response bodies to sessions on the hot path, without importing cattrs.

``get``, ``list`` and the bulk operations decode nothing but sessions. Their structuring
functions are generated ahead of time from the models (`clerk_sessions._session_decoders`,
written by ``scripts/gen_decoders.py`` with the same writer `_serde` runs for every other
model), so a process that only reads sessions never imports cattrs or generates code:
about 15 ms of a 300 ms cold start here (benchmarks/bench_cold.py). The cattrs converter
in `_serde` stays the single authority on what a body means: it uses these same functions
as its hooks for `Session` and `SessionTask`, and whenever they refuse a body, `_serde`'s
detailed converter is loaded to say where the body broke the schema.

This module also holds the pieces the generated code calls at run time (`builder`,
`enum_hook`, `str_key_mapping`, `tuple_of`); `_serde` uses the same ones for the hooks it
generates at run time.

With the fast paths off (``CLERK_SESSIONS_NO_FAST_PATHS``, `_config.FAST_PATHS`) every body
goes through `_serde`'s converter with cattrs' own hooks, and `json` parses it.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from clerk_sessions import models
from clerk_sessions._config import FAST_PATHS
from clerk_sessions._errors import ResponseValidationError
from clerk_sessions.models import Session

if TYPE_CHECKING:
    import enum

__all__ = [
    "builder",
    "decode_session",
    "decode_session_page",
    "enum_hook",
    "loads",
    "required_builder",
    "session_from_data",
    "str_key_mapping",
    "tuple_of",
]

T = TypeVar("T")

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


# ----------------------------------------------------------- run-time pieces of hooks


def enum_hook(cls: type[enum.Enum]) -> Callable[[Any, Any], Any]:
    """Structure a JSON string into ``cls``: known values by one lookup, unknown strings
    as the open enum's pseudo-members (`models._OpenStrEnum`), anything else refused."""
    known = dict(cls._value2member_map_)

    def structure(value: Any, _: Any) -> Any:
        member = known.get(value)
        if member is not None:
            return member
        if type(value) is not str:
            raise TypeError(f"expected string, got {type(value).__name__}")
        return cls(value)

    return structure


def str_key_mapping(value: Any, _: Any = None) -> dict[str, Any]:
    """``Mapping[str, Any]`` as cattrs structures it with this SDK's strict ``str`` hook:
    a new dict of the same items, in one pass; a non-string key is refused."""
    result: dict[str, Any] = {}
    for key, item in cast("Mapping[Any, Any]", value).items():
        if type(key) is not str:
            raise TypeError(f"expected string, got {type(key).__name__}")
        result[key] = item
    return result


def tuple_of(structure: Callable[[Any, Any], T], value: Any) -> tuple[T, ...]:
    """``tuple[X, ...]`` as cattrs structures it: each item of the iterable, in order."""
    return tuple([structure(item, None) for item in cast("Iterable[Any]", value)])


def builder(cls: type[Any]) -> type[Any] | None:
    """A subclass of ``cls`` whose instances take plain attribute stores, or None.

    It adds no slots, so its instances have ``cls``'s exact layout and CPython lets a
    finished one become a ``cls`` by ``__class__`` assignment. ``__setattr__`` and
    ``__delattr__`` both go back to object's (CPython uses its generic C setter only when
    neither is overridden), so ``b.x = v`` is a store into the slot that the interpreter
    specializes (3.11+): measured on `Session`'s 14 fields, about a third of the time of
    calling each slot descriptor's ``__set__``. None when ``cls`` refuses the subclass
    or the interpreter the ``__class__`` assignment: then ``cls``'s own ``__init__``
    builds the instances. Which classes may be built this way at all (an ``__init__``
    that only stores the fields) is `_serde._fills_slots_safely`'s call.
    """
    if cls in _BUILDERS:
        return _BUILDERS[cls]
    made: type[Any] | None
    try:
        made = type(
            f"_{cls.__name__}Builder",
            (cls,),
            {
                "__slots__": (),
                "__setattr__": object.__setattr__,
                "__delattr__": object.__delattr__,
                "__module__": __name__,
            },
        )
        probe: Any = object.__new__(made)
        probe.__class__ = cls
    except TypeError:  # a class that refuses subclasses, or a layout CPython will not swap
        made = None
    _BUILDERS[cls] = made
    return made


# One builder per class, shared by every hook that builds it (generated ahead or not).
_BUILDERS: dict[type[Any], type[Any] | None] = {}


def required_builder(cls: type[Any]) -> type[Any]:
    """`builder` for code generated ahead of time, which was written to use one."""
    made = builder(cls)
    if made is None:  # pragma: no cover - CPython swaps the classes of every model
        raise RuntimeError(
            f"this interpreter cannot build {cls.__name__} through its slots; "
            "set CLERK_SESSIONS_NO_FAST_PATHS=1 to decode with cattrs' own hooks"
        )
    return made


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
        from clerk_sessions import _session_decoders as generated

        _structure_session = generated.structure_Session
        _session_any_fields = generated.ANY_FIELDS[Session]

        def structure_list(items: Any) -> list[Session]:
            return [generated.structure_Session(item) for item in items]

        _structure_session_list = structure_list
    else:
        from clerk_sessions import _serde

        _structure_session = _serde.converter.get_structure_hook(Session)
        structure_many = _serde.converter.get_structure_hook(list[Session])

        def structure_list_with_cattrs(items: Any) -> list[Session]:
            sessions: list[Session] = structure_many(items, list[Session])
            return sessions

        _structure_session_list = structure_list_with_cattrs
        _session_any_fields = _serde.any_fields(Session)


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
        from clerk_sessions._serde import validation_error

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
        from clerk_sessions._serde import validation_error

        error = validation_error(body, items, list[Session], exc)
        if path_prefix:
            error = ResponseValidationError(
                [e.replace(" @ $", f" @ ${path_prefix}", 1) for e in error.errors], body=body
            )
        raise error from None
    return models.SessionPage(data=sessions, total_count=total)
