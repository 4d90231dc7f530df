"""A job store's URL: which kind of store it names (`parse_store_url`), and that store,
opened (`open_store`). Above both stores, which import nothing of this.
"""

from __future__ import annotations

import os
from typing import Literal

from clerk_sessions._urls import redact_url
from clerk_sessions.errors import ConfigurationError
from clerk_sessions.jobs._store import JobStore

__all__ = ["open_store", "parse_store_url"]


def parse_store_url(url: str | os.PathLike[str]) -> tuple[Literal["sqlite", "redis"], str]:
    """Which store ``url`` names, and what to give that store's constructor.

    ``sqlite:///ABSOLUTE/PATH`` (or ``sqlite:///relative`` / a plain path) is SQLite, with
    the file's path; ``redis://``, ``rediss://`` and ``unix://`` are Redis, with the
    whole URL. `ConfigurationError` (a `ValueError`) for any other scheme or an empty path.
    """
    text = os.fspath(url)
    if not isinstance(text, str):
        raise TypeError(f"a job store is a URL or a path string, got {type(text).__name__}")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if not text:
            raise ConfigurationError(
                "the job store is empty: give sqlite:///PATH, a path or redis://"
            )
        return "sqlite", text
    scheme = scheme.lower()
    if scheme == "sqlite":
        # API.md spells it sqlite:///var/lib/app/revoke.db (the path is absolute); SQLAlchemy's
        # four slashes (sqlite:////var/...) mean the same file.
        path = rest[1:] if rest.startswith("//") else rest
        if not path.startswith("/") or path == "/":
            raise ConfigurationError(
                f"the job store {text!r} is not sqlite:///ABSOLUTE/PATH "
                "(give a plain path for a relative file)"
            )
        return "sqlite", path
    if scheme in ("redis", "rediss", "unix"):
        return "redis", text
    raise ConfigurationError(
        f"unknown job store {redact_url(text)!r}: use sqlite:///ABSOLUTE/PATH, a file path, "
        "or redis://HOST"
    )


def open_store(url: str | os.PathLike[str]) -> JobStore:
    """The store that ``url`` names (see `parse_store_url`). Does no I/O: the first
    operation connects."""
    kind, target = parse_store_url(url)
    # Each store is imported only when used: the Redis one needs the ``redis`` extra.
    if kind == "redis":
        from clerk_sessions.jobs._redis_store import RedisStore

        return RedisStore(target)
    from clerk_sessions.jobs._sqlite_store import SQLiteStore

    return SQLiteStore(target)
