"""`_serde`'s fast path beyond today's models: field types and class shapes the hook
generator supports for models still to come, and the fallbacks to the detailed converter.

The generated hooks must agree with cattrs' detailed converter (same verdict, same
instance), and must never skip what a class's ``__init__`` would do (validators, init
hooks, factories, a cached hash).
"""

from __future__ import annotations

import enum
import json
from typing import Any

import attrs
import cattrs
import pytest

from benchmarks._common import session_dict
from clerk_sessions._codec import converter as _serde
from clerk_sessions._codec import decode as _decode
from clerk_sessions._codec import runtime
from clerk_sessions.errors import ResponseValidationError
from clerk_sessions.models import Session


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mood(str, enum.Enum):
    NEUTRAL = ""  # a falsy member: a dict lookup miss and a hit look alike with `or`
    HAPPY = "happy"


def _either(value: Any, _: Any) -> int | str:
    if type(value) is int or type(value) is str:
        return value
    raise TypeError(f"expected integer or string, got {type(value).__name__}")


def _converter(*, detailed: bool) -> cattrs.Converter:
    """The SDK's converter plus the hooks a new model's field types would register."""
    converter = _serde.make_converter(detailed=detailed)
    for enum_cls in (Level, Mood):
        converter.register_structure_hook(enum_cls, runtime.enum_hook(enum_cls))
    converter.register_structure_hook(int | str, _either)
    return converter


@attrs.frozen(kw_only=True)
class Reading:
    value: float
    level: Level
    mood: Mood
    anything: Any
    either: int | str = 0
    note: str = "n/a"


_FAST = _converter(detailed=False)
_DETAILED = _converter(detailed=True)
_structure_reading = _serde._fast_model_hook(_FAST, Reading)

_VALID = {"value": 1.5, "level": 2, "mood": "happy", "anything": {"x": [1]}}


def _verdicts(data: dict[str, Any], cls: type[Any] = Reading) -> tuple[Any, Any]:
    hook = _structure_reading if cls is Reading else _serde._fast_model_hook(_FAST, cls)
    results = []
    for structure in (lambda: hook(data, cls), lambda: _DETAILED.structure(data, cls)):
        try:
            results.append(("ok", structure()))
        except Exception:
            results.append(("error", None))
    return results[0], results[1]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"value": 3},  # an integer is a number
        {"mood": ""},  # the falsy member
        {"anything": None, "either": "x", "note": "hello"},
        {"either": 7},
    ],
)
def test_valid_bodies_decode_to_the_same_instance_both_ways(changes: dict[str, Any]) -> None:
    fast, detailed = _verdicts({**_VALID, **changes})

    assert fast == detailed
    assert fast[0] == "ok"
    reading = fast[1]
    assert type(reading.value) is float
    assert type(reading.level) is Level and type(reading.mood) is Mood


@pytest.mark.parametrize(
    "changes",
    [
        {"value": True},  # JSON true is not the number 1
        {"value": "1.5"},
        {"level": 3},  # no such member
        {"level": "2"},  # a string is not the integer member
        {"mood": "sad"},  # a closed enum refuses unknown values
        {"mood": None},
        {"either": 1.5},
        {"note": 1},
    ],
)
def test_wrong_values_are_refused_both_ways(changes: dict[str, Any]) -> None:
    fast, detailed = _verdicts({**_VALID, **changes})

    assert fast == detailed == ("error", None)


def test_a_field_typed_any_passes_any_json_value_through() -> None:
    for value in (None, 1, "x", [1, {"a": None}]):
        assert _structure_reading({**_VALID, "anything": value}).anything == value


# ---------------------------------------------------------------------- class shapes


@attrs.frozen(kw_only=True)
class Plain:
    n: int


@attrs.frozen(kw_only=True)
class Validated:
    n: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.frozen(kw_only=True)
class PostInitChecked:
    n: int

    def __attrs_post_init__(self) -> None:
        if self.n < 0:
            raise ValueError("n must not be negative")


@attrs.define(kw_only=True)
class PostInit:
    n: int
    doubled: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self.doubled = 2 * self.n


@attrs.frozen(kw_only=True)
class WithFactory:
    n: int
    tags: list[str] = attrs.Factory(list)


@attrs.define(kw_only=True, slots=False)
class NoSlots:
    n: int


@attrs.frozen(kw_only=True, cache_hash=True)
class CachedHash:
    n: int


class NotAttrs:
    __slots__ = ("n",)


@pytest.mark.parametrize(
    ("cls", "safe"),
    [
        (Plain, True),
        (Validated, False),
        (PostInitChecked, False),
        (PostInit, False),
        (WithFactory, False),
        (NoSlots, False),
        (CachedHash, False),
        (NotAttrs, False),
    ],
)
def test_only_classes_whose_init_just_stores_the_fields_are_filled_through_slots(
    cls: type[Any], safe: bool
) -> None:
    assert _serde.fills_slots_safely(cls) is safe


def test_instances_built_through_the_builder_are_exactly_the_frozen_class() -> None:
    built = _serde._fast_model_hook(_FAST, Plain)({"n": 1}, Plain)

    assert type(built) is Plain and built == Plain(n=1) and hash(built) == hash(Plain(n=1))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.n = 2  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del built.n  # type: ignore[misc]


@attrs.frozen(kw_only=True)
class Final:
    n: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("Final takes no subclasses")


def test_a_class_that_refuses_subclasses_is_built_through_its_init() -> None:
    assert _serde.fills_slots_safely(Final)
    assert runtime.builder(Final) is None

    fast, detailed = _verdicts({"n": 4}, Final)

    assert fast == detailed == ("ok", Final(n=4))


@pytest.mark.parametrize(
    "cls",
    [
        Validated,
        PostInitChecked,
        NoSlots,
        PostInit,
        WithFactory,
        CachedHash,
    ],
)
def test_classes_that_need_their_init_are_built_through_it(cls: type[Any]) -> None:
    fast, detailed = _verdicts({"n": 4}, cls)

    assert fast == detailed == ("ok", cls(n=4))
    if cls is PostInit:
        assert fast[1].doubled == 8  # __attrs_post_init__ ran
    if cls is CachedHash:
        assert hash(fast[1]) == hash(CachedHash(n=4))


@pytest.mark.parametrize("cls", [Validated, PostInitChecked])
def test_validators_and_init_hooks_still_refuse_through_the_fast_path(cls: type[Any]) -> None:
    with pytest.raises(ValueError, match=r"must be >= 0|must not be negative"):
        _serde._fast_model_hook(_FAST, cls)({"n": -1}, cls)


# ---------------------------------------------------------------------- fallbacks


def test_a_body_only_the_fast_path_refuses_is_reported_with_the_fast_error() -> None:
    # Should the generated code ever refuse what the detailed converter accepts, the
    # failure still surfaces, with the fast path's own message.
    error = _serde.validation_error(b"{}", session_dict(0), Session, TypeError("expected str @ id"))

    assert isinstance(error, ResponseValidationError)
    assert error.errors == ["expected str @ id @ $"]


def test_a_broken_item_in_a_bare_array_is_named_by_its_index() -> None:
    broken = {**session_dict(1), "last_active_at": "soon"}
    body = json.dumps([session_dict(0), broken]).encode()

    with pytest.raises(ResponseValidationError) as info:
        _decode.decode_session_page(body)

    assert info.value.errors == ["invalid value for type, expected int @ $[1].last_active_at"]
    assert info.value.body == body


def test_a_factory_default_is_a_fresh_value_per_instance_and_a_given_value_is_checked() -> None:
    hook = _serde._fast_model_hook(_FAST, WithFactory)

    first, second = hook({"n": 1}, WithFactory), hook({"n": 2}, WithFactory)
    assert first.tags == [] and second.tags == [] and first.tags is not second.tags
    assert hook({"n": 1, "tags": ["a"]}, WithFactory).tags == ["a"]
    with pytest.raises(TypeError):
        hook({"n": 1, "tags": [3]}, WithFactory)


def test_an_init_false_field_in_the_body_is_ignored() -> None:
    built = _serde._fast_model_hook(_FAST, PostInit)({"n": 3, "doubled": 99}, PostInit)

    assert built.doubled == 6
