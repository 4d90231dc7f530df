"""What structuring functions call at run time: the leaf of the codec.

The functions written ahead of time (`clerk_sessions._codec.generated`) and those the
converter generates at run time (`clerk_sessions._codec.converter`) both call these. This
module imports nothing of the SDK, so the generated code depends on it and on the
models only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    import enum

__all__ = ["builder", "enum_hook", "required_builder", "str_key_mapping", "tuple_of"]

T = TypeVar("T")


def enum_hook(cls: type[enum.Enum]) -> Callable[[Any, Any], Any]:
    """Structure a JSON string into ``cls``: known values by one lookup, unknown strings
    as the open enum's pseudo-members (`clerk_sessions.models`'s open enums), anything else
    refused."""
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
    that only stores the fields) is `converter.fills_slots_safely`'s call.
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
