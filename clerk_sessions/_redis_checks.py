"""What the shared quota and the Redis job store check about their server: whether it may
evict their keys.

A Redis whose ``maxmemory-policy`` is anything but ``noeviction`` deletes keys of its
choosing when it reaches ``maxmemory``: a job's items, a quota's log of starts. The
policy is read with ``CONFIG GET``; managed services (ElastiCache, Memorystore, Azure
Cache...) and ACL users without ``+config|get`` refuse that, so the ``maxmemory_policy``
field of ``INFO memory`` is read instead, which they allow. A server that refuses both
leaves the policy unknown, and each caller decides what that means for it.
"""

from __future__ import annotations

from typing import Any

from coredis.exceptions import AuthenticationError, ResponseError

__all__ = ["SAFE_POLICY", "eviction_policy"]

#: The one policy under which Redis never deletes a key that has no expiry.
SAFE_POLICY = "noeviction"


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
