"""One request quota for every process and host of a fleet, held on Redis (extra ``redis``).

`RedisRateLimit` gives the guarantee of `RateLimit` (never more than ``requests`` request
starts in any window of ``per_seconds``) to every client, in every process and on every
host, that uses the same Redis and key. Waiting is fair and cheap: each request books a
slot in one shared schedule and sleeps once until it; a request costs two Redis round
trips (three when it had to wait). When Redis is down, slow or restarted the clients
fall back to an in-process `RateLimit` with the same numbers, and rejoin the shared
quota as soon as Redis answers again: no Clerk call ever fails because of Redis.

The Redis client is `coredis <https://coredis.readthedocs.io>`_, which runs on anyio,
so the limiter works under asyncio, trio and the sync `Clerk` alike.
"""

from clerk_sessions.redis._quota import RedisRateLimit

__all__ = ["RedisRateLimit"]
