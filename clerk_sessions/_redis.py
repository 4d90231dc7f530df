"""What the shared quota (`clerk_sessions.redis`) and the Redis job store
(`clerk_sessions.jobs`) share about Redis (extra ``redis``): one coredis client per event
loop, what they check about their server, and what they say when it refuses or fails.

One client per event loop (`loop_clients`): a coredis client works only on the loop that
made it, and its connection pool is entered and left by one task, which owns its
connections' tasks. The quota and the store are called from any task of an application,
with no context of their own to enter, so `PerLoop` gives each loop one client, entered
by a task of its own on that loop (a system task on trio) and closed by that task at
``aclose()`` or when the loop ends; callers use the client directly (commands need no
particular task, only the pool).

The eviction policy (`eviction_policy`): a Redis whose ``maxmemory-policy`` is anything
but ``noeviction`` deletes keys of its choosing when it reaches ``maxmemory``: a job's
items, a quota's log of starts. The policy is read with ``CONFIG GET``; managed services
(ElastiCache, Memorystore, Azure Cache...) and ACL users without ``+config|get`` refuse
that, so the ``maxmemory_policy`` field of ``INFO memory`` is read instead, which they
allow. A server that refuses both leaves the policy unknown, and each caller decides what
that means for it.

Failures (`describe`, `is_transient`): one sentence of the SDK's own per kind of failure,
never Redis's text (a script's error names its SHA and line, and tells an operator
nothing about what to do).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import coredis
from coredis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConnectionError,
    ReadOnlyError,
    ResponseError,
    UnknownCommandError,
    WrongTypeError,
)

from clerk_sessions._eventloop import PerLoop

__all__ = ["SAFE_POLICY", "describe", "eviction_policy", "is_transient", "loop_clients"]

_Client = TypeVar("_Client", bound="coredis.Redis[Any]")

#: The one policy under which Redis never deletes a key that has no expiry.
SAFE_POLICY = "noeviction"

# NOPERM names the refused command in quotes: "... to run the 'config|get' command".
_REFUSED_COMMAND = re.compile(r"'([a-z][a-z0-9_|-]*)' command", re.IGNORECASE)


# ---------------------------------------------------------------- one client per loop


def loop_clients(
    make: Callable[[], _Client],
    *,
    name: str,
    scripts: Sequence[str] = (),
    after_open: Callable[[_Client], Awaitable[object]] | None = None,
) -> PerLoop[_Client]:
    """One entered coredis client per running event loop: ``await clients.get()`` is the
    running loop's, ``await clients.aclose()`` closes it (see `PerLoop`).

    ``make()`` builds a client, not yet entered (it is called in the caller: its errors
    are the caller's). The task that enters it then loads ``scripts``, once per pool,
    rather than letting every caller of a fresh server meet NOSCRIPT at once (each paying
    two more round trips); an entry or a load that fails reaches the callers waiting, and
    the next call opens a new client. ``after_open(client)`` runs once the client is
    handed out, without holding anyone up.
    """

    @asynccontextmanager
    async def entered() -> AsyncGenerator[_Client]:
        client = make()
        async with client:
            for script in scripts:
                await client.script_load(script)
            yield client

    return PerLoop(entered, name=name, after_open=after_open)


# ---------------------------------------------------------------- the eviction policy


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def eviction_policy(client: Any) -> str | None:
    """The server's ``maxmemory-policy``, or None if it refuses to tell.

    ``client`` is an entered coredis client. Connection failures, timeouts and refused
    credentials propagate (the caller's handling of those applies); refusals of the
    command (an ACL's NOPERM, a command renamed or disabled by the service) are what
    makes the answer None.
    """
    try:
        reply = await client.config_get(["maxmemory-policy"])
    except AuthenticationError:
        raise
    except ResponseError:
        pass
    else:
        for name, value in reply.items():
            if _text(name) == "maxmemory-policy" and value:
                return _text(value)
    try:
        info = await client.info("memory")
    except AuthenticationError:
        raise
    except ResponseError:
        return None
    value = info.get("maxmemory_policy")
    return _text(value) if value else None


# ---------------------------------------------------------------- failures


def _code(exc: BaseException) -> str:
    """The error code Redis put first in its reply, when coredis left it in the text."""
    first = str(exc).split(" ", 1)[0]
    return first if first.isupper() else ""


def is_transient(exc: BaseException) -> bool:
    """Whether the operation may succeed if repeated in a moment: the server is gone,
    loading its data, or busy running a script."""
    return isinstance(exc, (ConnectionError, TimeoutError)) or _code(exc) == "BUSY"


def describe(exc: BaseException, reply_timeout_s: float, *, needs: str, keys: str) -> str:
    """What went wrong, and what to do about it, for an operator. ``needs`` says which
    kinds of commands the caller runs, ``keys`` the key pattern it uses (for an ACL)."""
    if isinstance(exc, TimeoutError):
        return f"the server did not answer within {reply_timeout_s:g} s"
    if isinstance(exc, builtins.ConnectionError) and exc.__cause__ is not None:
        return describe(exc.__cause__, reply_timeout_s, needs=needs, keys=keys)
    if isinstance(exc, (ConnectionError, builtins.ConnectionError)):
        return "the connection failed (server down, restarting, or unreachable)"
    if isinstance(exc, AuthenticationError):
        return (
            "the server refused the credentials of the store URL (wrong user or password, "
            "or none given where one is needed)"
        )
    if isinstance(exc, AuthorizationError):
        refused = _REFUSED_COMMAND.search(str(exc))
        if refused is None:
            return (
                f"the server's ACL does not let this user use these keys: allow the key "
                f"pattern {keys}"
            )
        command = refused.group(1).replace("|", " ").upper()
        return (
            f"the server's ACL does not let this user run {command}: it needs {needs} on "
            f"the keys {keys}"
        )
    if isinstance(exc, WrongTypeError):
        return (
            f"a key holds data that clerk-sessions did not write (does another program use "
            f"the keys {keys}?)"
        )
    if isinstance(exc, ReadOnlyError):
        return "the server is a read-only replica: give the URL of the primary"
    if isinstance(exc, UnknownCommandError):
        return (
            "the server does not know a command the job store needs (it needs Redis 6.2 "
            "or later, with Lua scripting)"
        )
    code = _code(exc)
    if code == "OOM":
        return (
            "the server is out of memory (maxmemory reached; with noeviction it refuses "
            "writes): free memory or raise maxmemory, then run it again"
        )
    if code == "MISCONF":
        return "the server refuses writes because it cannot save its data to disk (see its log)"
    if code == "BUSY":
        return "the server stayed busy running another script"
    return f"Redis refused the operation ({code or type(exc).__name__})"
