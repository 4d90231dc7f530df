"""What the Redis job store says when Redis refuses or fails: one sentence of its own per
kind of failure, never Redis's text (a script's error names its SHA and line, and tells
an operator nothing about what to do).
"""

from __future__ import annotations

import re

from coredis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConnectionError,
    ReadOnlyError,
    UnknownCommandError,
    WrongTypeError,
)

__all__ = ["describe", "is_transient"]

# NOPERM names the refused command in quotes: "... to run the 'config|get' command".
_REFUSED_COMMAND = re.compile(r"'([a-z][a-z0-9_|-]*)' command", re.IGNORECASE)


def _code(exc: BaseException) -> str:
    """The error code Redis put first in its reply, when coredis left it in the text."""
    first = str(exc).split(" ", 1)[0]
    return first if first.isupper() else ""


def is_transient(exc: BaseException) -> bool:
    """Whether the operation may succeed if repeated in a moment: the server is gone,
    loading its data, or busy running a script."""
    return isinstance(exc, (ConnectionError, TimeoutError)) or _code(exc) == "BUSY"


def describe(exc: BaseException, reply_timeout_s: float) -> str:
    """What went wrong, and what to do about it, for an operator."""
    if isinstance(exc, TimeoutError):
        return f"the server did not answer within {reply_timeout_s:g} s"
    if isinstance(exc, ConnectionError):
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
                "the server's ACL does not let this user use the job's keys: allow the "
                "key pattern ~clerk-sessions:job:*"
            )
        command = refused.group(1).replace("|", " ").upper()
        return (
            f"the server's ACL does not let this user run {command}: the job store needs "
            "streams, hashes, sets and Lua scripts (EVALSHA and SCRIPT LOAD) on the keys "
            "~clerk-sessions:job:*"
        )
    if isinstance(exc, WrongTypeError):
        return (
            "a key of the job holds data that clerk-sessions did not write (does another "
            "program use the clerk-sessions:job: prefix?)"
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
