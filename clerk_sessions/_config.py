"""Client settings: the retry policy (in the seed's shape), and the UNSET marker."""

from __future__ import annotations

import enum
import math
import os
from typing import Any, Final, Literal

import attrs

__all__ = ["UNSET", "BackoffStrategy", "RetryConfig", "Unset"]

DEFAULT_SERVER_URL: Final = "https://api.clerk.com/v1"
DEFAULT_API_VERSION: Final = "2026-05-12"
# `verify` was removed in 2025-04-10; this is the last version that still has it.
VERIFY_API_VERSION: Final = "2025-03-12"
DEFAULT_TIMEOUT_MS: Final = 30_000
# Clerk's largest answer, a page of 500 sessions, is well under 1 MiB.
DEFAULT_MAX_RESPONSE_BYTES: Final = 10 * 1024 * 1024
# As Clerk's own SDKs (@clerk/backend: MAX_CACHE_LAST_UPDATED_AT_SECONDS = 5 * 60): a
# key Clerk retired stops verifying within five minutes.
DEFAULT_JWKS_CACHE_TTL_S: Final = 300.0

#: The environment variable that turns the fast paths off, for bisecting an oddity.
NO_FAST_PATHS_ENV: Final = "CLERK_SESSIONS_NO_FAST_PATHS"
#: False when ``CLERK_SESSIONS_NO_FAST_PATHS`` is set (to anything but ``""`` or ``0``) at
#: import: then responses are parsed by `json` and decoded by stock cattrs hooks, each
#: attempt's deadline is anyio's cancel scope on asyncio too, and the sync facade calls
#: through anyio's ``BlockingPortal``. Behaviour is the same either way; only the speed
#: differs.
FAST_PATHS: Final = os.environ.get(NO_FAST_PATHS_ENV, "") in ("", "0")


class Unset(enum.Enum):
    """The type of `UNSET`: "not given, use the client's setting"."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset.UNSET


def _positive(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive finite number, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _attempts(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _fraction(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    _non_negative(instance, attribute, value)
    if value > 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


@attrs.frozen
class BackoffStrategy:
    """Exponential backoff: wait ``initial_interval_ms * exponent**(n-1)`` before retry n,
    at most ``max_interval_ms`` per wait, and give up once ``max_elapsed_time_ms`` would be
    exceeded. Positional order is the seed's."""

    initial_interval_ms: int = attrs.field(default=500, validator=_positive)
    max_interval_ms: int = attrs.field(default=8_000, validator=_positive)
    exponent: float = attrs.field(default=2.0, validator=_positive)
    max_elapsed_time_ms: int = attrs.field(default=60_000, validator=_positive)


@attrs.frozen
class RetryConfig:
    """How a request is retried (the seed's shape, plus ``max_attempts`` and ``jitter``).

    - ``strategy``: ``"backoff"`` retries; ``"none"`` never does.
    - ``retry_connection_errors``: retry when no answer arrived at all.
    - ``max_attempts``: every attempt counts, the first included.
    - ``jitter``: the fraction of each backoff wait that is randomized (0 to 1); it spreads
      clients that failed together so they do not retry together.
    - ``max_retry_after_ms``: the longest ``Retry-After`` worth waiting for; a longer one
      is raised at once as `RateLimitError` with its ``retry_after``.

    Retried: connection errors, 429, and 5XX but 501. Never other 4XX. A POST that is not
    safe to repeat (``create``, ``refresh``) is retried only when it cannot have reached
    the server (connect errors) or on 429, which Clerk sends before doing any work.
    """

    strategy: Literal["backoff", "none"] = attrs.field(
        default="backoff", validator=attrs.validators.in_(("backoff", "none"))
    )
    backoff: BackoffStrategy = attrs.field(factory=BackoffStrategy)
    retry_connection_errors: bool = True
    max_attempts: int = attrs.field(default=4, kw_only=True, validator=_attempts)
    jitter: float = attrs.field(default=0.5, kw_only=True, validator=_fraction)
    max_retry_after_ms: int = attrs.field(default=60_000, kw_only=True, validator=_positive)


DEFAULT_RETRY_CONFIG: Final = RetryConfig()
