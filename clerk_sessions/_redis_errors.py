"""What the Redis job store and the shared quota say when Redis refuses or fails: one
sentence of their own per kind of failure, never Redis's text (a script's error names its
SHA and line, and tells an operator nothing about what to do).
"""

from __future__ import annotations

import builtins
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
