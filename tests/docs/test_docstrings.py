"""Every public name has a docstring: the API reference is generated from them."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

import clerk_sessions
from clerk_sessions import AsyncClerk, Clerk, errors, models, webhooks
from clerk_sessions._resources.pagination import SessionIterator
from clerk_sessions._resources.raw import AsyncSessionsWithRawResponse
from clerk_sessions._resources.sessions import AsyncSessions
from clerk_sessions._sync import Sessions

# Values whose docstring would be their type's, not their own.
_NOT_DOCUMENTABLE = {"__version__"}


def _exported(module: ModuleType) -> list[str]:
    return [f"{module.__name__}.{name}" for name in module.__all__ if name not in _NOT_DOCUMENTABLE]


def _members(cls: type) -> list[str]:
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(value) or isinstance(value, property):
            names.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return names


# With the classes AsyncSessions inherits its operations from (iterate, the bulk ones).
_CLASSES_WITH_PUBLIC_METHODS = [
    AsyncClerk,
    *(cls for cls in AsyncSessions.__mro__ if cls.__module__.startswith("clerk_sessions.")),
    AsyncSessionsWithRawResponse,
    SessionIterator,
    Clerk,
    Sessions,
]
_MODEL_CLASSES = [
    getattr(models, name) for name in models.__all__ if inspect.isclass(getattr(models, name))
]
PUBLIC = sorted(
    {
        *_exported(clerk_sessions),
        *_exported(models),
        *_exported(errors),
        *_exported(webhooks),
        *(name for cls in _CLASSES_WITH_PUBLIC_METHODS for name in _members(cls)),
        *(name for cls in _MODEL_CLASSES for name in _members(cls)),
    }
)


def _lookup(dotted: str) -> object:
    for module in (clerk_sessions, models, errors):
        prefix = module.__name__ + "."
        if dotted.startswith(prefix) and dotted.count(".") == prefix.count("."):
            return getattr(module, dotted[len(prefix) :])
    module_name, _, qualname = dotted.rpartition(".")
    owner_module, _, owner_name = module_name.rpartition(".")
    owner = getattr(importlib.import_module(owner_module), owner_name)
    return vars(owner)[qualname]


def _own_doc(obj: object) -> str | None:
    if isinstance(obj, property):
        return obj.__doc__
    if isinstance(obj, ModuleType) or inspect.isclass(obj) or inspect.isroutine(obj):
        return obj.__doc__
    # An instance (UNSET, require_session...): its class documents it.
    return type(obj).__doc__


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_has_a_docstring(name: str) -> None:
    doc = _own_doc(_lookup(name))
    assert doc is not None and doc.strip(), f"{name} has no docstring"


def test_the_walk_covers_the_api() -> None:
    # Guard against the walk silently finding nothing.
    assert "clerk_sessions._resources.sessions.AsyncSessions.get" in PUBLIC
    assert "clerk_sessions._revocation.BulkRevocation.revoke_many" in PUBLIC
    assert "clerk_sessions._resources.raw.AsyncSessionsWithRawResponse.get" in PUBLIC
    assert "clerk_sessions._sync.Sessions.revoke_many" in PUBLIC
    assert "clerk_sessions.errors.RateLimitError" in PUBLIC
    assert "clerk_sessions.models.Session.expire_at_dt" in PUBLIC
