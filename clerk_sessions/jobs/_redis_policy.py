"""The Redis job store's rule about eviction: a server whose ``maxmemory-policy`` is not
``noeviction`` deletes keys of its choosing at ``maxmemory`` (a job's items), so it is
refused, unless the store URL says ``?allow_eviction=true``.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from clerk_sessions._redis import SAFE_POLICY
from clerk_sessions._urls import redact_url
from clerk_sessions.errors import ConfigurationError
from clerk_sessions.jobs._store import JobStoreError

__all__ = ["judge_policy", "without_allow_eviction"]

logger = logging.getLogger("clerk_sessions.jobs")

# The store URL's own query parameter (taken out before coredis reads the URL).
_ALLOW_EVICTION = "allow_eviction"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
# The servers whose evicting policy was accepted with a warning (logged once each).
_WARNED: set[str] = set()


def without_allow_eviction(url: str) -> tuple[str, bool]:
    """``url`` without the store's own ``allow_eviction`` parameter, and its value."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    allow = False
    kept: list[tuple[str, str]] = []
    for key, value in query:
        if key != _ALLOW_EVICTION:
            kept.append((key, value))
        elif value.lower() in _TRUE:
            allow = True
        elif value.lower() not in _FALSE:
            raise ConfigurationError(
                f"?{_ALLOW_EVICTION}= in the Redis store URL {redact_url(url)!r} must be "
                f"true or false, got {value[:20]!r}"
            )
    if len(kept) == len(query):
        return url, allow
    return urlunsplit(parts._replace(query=urlencode(kept))), allow


def judge_policy(policy: str | None, shown: str, *, allow: bool) -> None:
    """Raise `JobStoreError` for any policy but noeviction, or one the server will not
    tell (None), unless ``allow``: then log one warning per server (``shown``, its URL
    without the password) and process."""
    if policy == SAFE_POLICY:
        return
    if policy is None:
        problem = (
            "cannot tell whether the server evicts keys: it refuses both CONFIG GET "
            "maxmemory-policy and INFO memory to this user"
        )
        fix = (
            "let this user run INFO (ACL SETUSER <user> +info) or CONFIG GET "
            "(+config|get), or, once you know the policy is noeviction, add "
            f"?{_ALLOW_EVICTION}=true to the store URL"
        )
    else:
        problem = (
            f"the server's maxmemory-policy is {policy}: under memory pressure it "
            "evicts keys, and a job whose keys it evicts is lost"
        )
        fix = (
            "run CONFIG SET maxmemory-policy noeviction (and set it in redis.conf), or "
            "give the jobs a Redis of their own; to accept the risk, add "
            f"?{_ALLOW_EVICTION}=true to the store URL"
        )
    if not allow:
        raise JobStoreError(f"Redis job store {shown}: {problem}: {fix}")
    if shown not in _WARNED:
        _WARNED.add(shown)
        logger.warning(
            "Redis job store %s: %s; accepted (%s=true): a job whose keys are evicted "
            "is reported as lost",
            shown,
            problem,
            _ALLOW_EVICTION,
        )
