"""JSON <-> models, through one cattrs converter.

Two converters share one configuration: a fast one without detailed validation for the
hot path, and a detailed one that only runs when the fast one fails, to say *where* the
body broke the schema (``expected bool @ $.latest_activity.is_mobile``). A valid body
therefore never pays for error bookkeeping.

Scalars are strict: by default cattrs would turn ``"false"`` into ``True`` and ``"12"``
into ``12``; here a wrong JSON type is an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import cattrs
from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.v import transform_error

from clerk_sessions._errors import ResponseValidationError
from clerk_sessions.models import (
    QueryParamStatus,
    Session,
    SessionPage,
    SessionRefresh,
    SessionStatus,
)

T = TypeVar("T")


def _strict(kind: type[Any], name: str) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        # `type(...) is`, not isinstance: JSON true must not pass as the integer 1.
        if type(value) is kind:
            return value
        raise TypeError(f"expected {name}, got {type(value).__name__}")

    return structure


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise TypeError(f"expected number, got {type(value).__name__}")


def _enum_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
    known = dict(cls._value2member_map_)

    def structure(value: Any, _: Any) -> Any:
        member = known.get(value)
        if member is not None:
            return member
        if type(value) is not str:
            raise TypeError(f"expected string, got {type(value).__name__}")
        return cls(value)

    return structure


def _structure_refresh(converter: cattrs.Converter) -> Callable[[Any, Any], SessionRefresh]:
    base = converter.gen_structure_attrs_fromdict(SessionRefresh)

    def structure(value: Any, cls: Any) -> SessionRefresh:
        refresh: SessionRefresh = base(value, cls)
        # The spec's oneOf: a token answer carries `jwt`, a cookies answer `cookies`.
        if refresh.object == "token" and refresh.jwt is None:
            raise ValueError("a 'token' answer must have a 'jwt' string")
        if refresh.object == "cookies" and refresh.cookies is None:
            raise ValueError("a 'cookies' answer must have a 'cookies' array")
        return refresh

    return structure


def make_converter(*, detailed: bool, forbid_extra_keys: bool = False) -> cattrs.Converter:
    """Build a converter with this SDK's hooks.

    ``forbid_extra_keys=True`` makes a strict copy that tests run over the spec's examples
    to notice drift; production ignores unknown fields.
    """
    converter = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=forbid_extra_keys)
    converter.register_structure_hook(str, _strict(str, "string"))
    converter.register_structure_hook(int, _strict(int, "integer"))
    converter.register_structure_hook(bool, _strict(bool, "boolean"))
    converter.register_structure_hook(float, _structure_float)
    for enum_cls in (SessionStatus, QueryParamStatus):
        converter.register_structure_hook(enum_cls, _enum_hook(enum_cls))
    converter.register_structure_hook(SessionRefresh, _structure_refresh(converter))
    return converter


converter = make_converter(detailed=False)
_detailed_converter = make_converter(detailed=True)

# Prebuilt structuring functions: the hot path calls these directly instead of asking
# the converter to dispatch on the type for every response.
_structure_session = converter.get_structure_hook(Session)
_structure_session_list = converter.get_structure_hook(list[Session])


def _validation_error(
    body: bytes, data: Any, target: Any, exc: Exception
) -> ResponseValidationError:
    """Re-run the detailed converter to name the failing field paths."""
    try:
        _detailed_converter.structure(data, target)
    except (ClassValidationError, IterableValidationError) as detailed:
        return ResponseValidationError(transform_error(detailed, path="$"), body=body)
    except Exception as other:
        return ResponseValidationError([f"{other} @ $"], body=body)
    # The detailed converter accepted what the fast one refused: report the fast error.
    return ResponseValidationError([f"{exc} @ $"], body=body)


def loads(body: bytes) -> Any:
    """Decode a JSON body, turning garbage into `ResponseValidationError`."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResponseValidationError([f"invalid JSON: {exc} @ $"], body=body) from None


def structure(body: bytes, data: Any, target: Any) -> Any:
    """Structure decoded JSON into ``target`` or raise `ResponseValidationError`."""
    try:
        return converter.structure(data, target)
    except Exception as exc:
        raise _validation_error(body, data, target, exc) from None


def decode_session(body: bytes) -> Session:
    """A `Session` from a response body."""
    data = loads(body)
    try:
        session: Session = _structure_session(data, Session)
    except Exception as exc:
        raise _validation_error(body, data, Session, exc) from None
    return session


def decode_session_page(body: bytes) -> SessionPage:
    """A page of sessions from either answer shape: the spec's bare array, or
    ``{"data": [...], "total_count": N}`` that the live API sends when paginated."""
    data = loads(body)
    if isinstance(data, list):
        items, total = data, None
        path_prefix = ""
    elif isinstance(data, dict) and "data" in data:
        items, total = data["data"], data.get("total_count")
        path_prefix = ".data"
        if total is not None and type(total) is not int:
            raise ResponseValidationError(
                [f"expected integer, got {type(total).__name__} @ $.total_count"], body=body
            )
    else:
        raise ResponseValidationError(["expected an array or an object with 'data' @ $"], body=body)
    try:
        sessions: list[Session] = _structure_session_list(items, list[Session])
    except Exception as exc:
        error = _validation_error(body, items, list[Session], exc)
        if path_prefix:
            error = ResponseValidationError(
                [e.replace(" @ $", f" @ ${path_prefix}", 1) for e in error.errors], body=body
            )
        raise error from None
    return SessionPage(data=sessions, total_count=total)


def unstructure_body(value: Any) -> dict[str, Any]:
    """A request body as a dict holding only the fields that were given (not None)."""
    raw: dict[str, Any] = converter.unstructure(value)
    return {key: item for key, item in raw.items() if item is not None}
