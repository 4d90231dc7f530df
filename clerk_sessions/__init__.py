"""clerk-sessions: an async-first SDK for the sessions part of Clerk's Backend API.

``AsyncClerk`` is the implementation; ``Clerk`` is its generated sync facade.
"""

from clerk_sessions import errors, models
from clerk_sessions._client import AsyncClerk
from clerk_sessions._config import UNSET, BackoffStrategy, RetryConfig
from clerk_sessions._ratelimit import RateLimit
from clerk_sessions._sync import Clerk
from clerk_sessions._version import __version__
from clerk_sessions.models import QueryParamStatus, SessionStatus

__all__ = [
    "UNSET",
    "AsyncClerk",
    "BackoffStrategy",
    "Clerk",
    "QueryParamStatus",
    "RateLimit",
    "RetryConfig",
    "SessionStatus",
    "__version__",
    "errors",
    "models",
]
