"""`RedisRateLimit`: what a user configures (the Redis, the numbers, the quota's key and
its shares), checked at construction, and bound to the quota's keys for each secret key
that uses it.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, cast
from urllib.parse import urlsplit

from clerk_sessions import RateLimit
from clerk_sessions._urls import redact_url
from clerk_sessions.errors import ConfigurationError

try:
    import coredis

    from clerk_sessions.redis._binding import Binding, Connections
except ImportError as exc:  # pragma: no cover - the extra is installed in every test run
    raise ImportError(
        "clerk_sessions.redis needs the redis extra: pip install 'clerk-sessions[redis]'"
    ) from exc

__all__ = ["RedisRateLimit"]

_SCHEMES = ("redis", "rediss", "unix")


def _check_redis(redis: object) -> str | Any:
    if isinstance(redis, (coredis.Redis, coredis.RedisCluster)):
        return cast(Any, redis)
    if not isinstance(redis, str):
        raise ConfigurationError(
            "redis must be a URL (redis://, rediss:// or unix://) or a coredis client, "
            f"got {type(redis).__name__}"
        )
    # Messages show the URL without its password, and not the parsers' own words,
    # which may quote a part of a password that confused them.
    shown = redact_url(redis)
    malformed = (
        f"the Redis URL {shown!r} is malformed: give redis://[USER:PASSWORD@]HOST[:PORT][/DB], "
        "with special characters of the password percent-encoded"
    )
    try:
        parts = urlsplit(redis)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigurationError(malformed) from None
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            f"the Redis URL must start with redis://, rediss:// or unix://, got {shown!r}"
        )
    if (parts.scheme == "unix" and not parts.path) or (
        parts.scheme != "unix" and not parts.hostname
    ):
        raise ConfigurationError(f"the Redis URL {shown!r} names no server")
    database = parts.path.lstrip("/") if parts.scheme != "unix" else ""
    if database and not database.isdigit():
        raise ConfigurationError(
            f"the Redis URL {shown!r} is malformed: the path must be a database number"
        )
    try:
        coredis.Redis.from_url(redis)
    except Exception:
        raise ConfigurationError(malformed) from None
    return redis


class RedisRateLimit:
    """Never more than ``requests`` request starts in any window of ``per_seconds``,
    for every client in every process and host that uses the same Redis and key.

    Pass it as ``rate_limit=`` to `AsyncClerk` or `Clerk`, in every process. Clerk's
    quota belongs to the instance (1000 requests per 10 s in production, 100 in
    development), and every process holding the secret key spends it: with one
    `RedisRateLimit` they all stay under it together. Windows are timed by Redis's clock,
    never the hosts', and counted, as with `RateLimit`, from when each answer arrived. A
    429 seen by any participant pauses all of them until its ``Retry-After``. Waiters are
    served in the order they came, each sleeping once until its slot (no polling).

    If Redis is unreachable, slow (an operation takes more than a second) or
    restarted, no Clerk call fails: the limiter logs one WARNING on the
    ``clerk_sessions`` logger and holds each process to an in-process `RateLimit` with
    the same numbers, then rejoins the shared quota once Redis answers again (it tries
    at most every two seconds). If Redis loses the quota's keys (flushed, restarted
    empty, evicting, a stale replica), the first process that notices starts it saw less
    than a window ago missing pauses the quota for a window and logs one WARNING; a
    Redis that may evict keys is named in one WARNING at the first connection.
    Constructing one never connects.

    :param redis: a URL (``redis://``, ``rediss://`` or ``unix://``), or a
        ``coredis.Redis`` client you have entered (``async with``); a URL lets the
        limiter open one connection pool per event loop it is used on (the sync `Clerk`
        runs its own loop), a client is used only on the loop it belongs to.
    :param requests: how many requests may start per window (an integer >= 1).
    :param per_seconds: the window length in seconds.
    :param key: the name of the quota in Redis. By default it is derived from the
        secret key of each client that uses the limiter (a hash, never the key itself),
        so two Clerk instances on one Redis never share a quota.
    """

    __slots__ = (
        "__weakref__",
        "_bindings",
        "_connections",
        "_key",
        "_lock",
        "_name",
        "_numbers",
        "_parent",
    )

    def __init__(
        self,
        redis: str | Any,
        requests: int,
        per_seconds: float,
        *,
        key: str | None = None,
    ) -> None:
        # RateLimit checks the numbers and holds them.
        self._init(RateLimit(requests, per_seconds), None, "")
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigurationError(f"key must be a non-empty string or None, got {key!r}")
        self._key = key
        self._connections = Connections(_check_redis(redis))

    def _init(self, numbers: RateLimit, parent: RedisRateLimit | None, name: str) -> None:
        self._numbers = numbers
        self._parent = parent
        self._name = name
        self._lock = threading.Lock()
        self._bindings: dict[str, Binding] = {}

    @property
    def requests(self) -> int:
        """How many requests may start per window."""
        return self._numbers.requests

    @property
    def per_seconds(self) -> float:
        """The window length in seconds."""
        return self._numbers.per_seconds

    @property
    def name(self) -> str:
        """The share's name (``""`` for the quota itself)."""
        return self._name

    def __repr__(self) -> str:
        if self._parent is not None:
            return f"{self._parent!r}.share({self._name!r}, {self.requests})"
        return f"RedisRateLimit({self.requests}, {self.per_seconds:g})"

    def share(self, name: str, requests: int) -> RedisRateLimit:
        """A limiter whose users together start at most ``requests`` per window, while
        this limiter's own limit still holds for everyone.

        A bulk job on ``quota.share("bulk", 800)`` of a 1000 per 10 s quota leaves at
        least 200 per window to the clients on ``quota`` itself. Shares with the same
        name (in any process) are the same share.
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"a share needs a non-empty name, got {name!r}")
        numbers = RateLimit(requests, self.per_seconds)
        if requests > self.requests:
            raise ValueError(
                f"a share cannot allow more than its quota: {requests} > {self.requests}"
            )
        child = object.__new__(RedisRateLimit)
        child._init(numbers, self, name)
        child._key = self._key
        child._connections = self._connections
        return child

    def _path(self) -> list[RedisRateLimit]:
        """This limiter, then its parents up to the quota."""
        path: list[RedisRateLimit] = [self]
        while path[-1]._parent is not None:
            path.append(path[-1]._parent)
        return path

    def _bind(self, secret_key: str) -> Binding:
        """The limiter as a client with this secret key uses it (one per quota key)."""
        if self._key is not None:
            base = self._key
        else:
            digest = hashlib.sha256(b"clerk-sessions quota\0" + secret_key.encode()).hexdigest()
            base = digest[:32]
        with self._lock:
            binding = self._bindings.get(base)
            if binding is None:
                # One hash tag for all keys of a quota: Redis Cluster keeps them in one slot.
                prefix = f"clerk-sessions:{{{base}}}"
                keys = [f"{prefix}:pause"]
                path = self._path()
                for level in path:
                    name = prefix if level._parent is None else f"{prefix}:share:{level._name}"
                    keys += [f"{name}:started", f"{name}:planned"]
                binding = self._bindings[base] = Binding(
                    keys, [level.requests for level in path], self._numbers, self._connections
                )
            return binding
