"""clerk-sessions: an async-first SDK for the sessions part of Clerk's Backend API.

``AsyncClerk`` is the implementation; ``Clerk`` is its generated sync facade.
"""

from typing import TYPE_CHECKING, Any

from clerk_sessions import errors, models

# Loaded for what it registers: Session.from_json reads with the codec's readers.
from clerk_sessions._codec import decode as _decode  # noqa: F401  # pyright: ignore[reportUnusedImport]
from clerk_sessions._config import UNSET, BackoffStrategy, RetryConfig
from clerk_sessions._ratelimit import RateLimit
from clerk_sessions._version import __version__
from clerk_sessions.models import QueryParamStatus, SessionStatus

if TYPE_CHECKING:
    from clerk_sessions._client import AsyncClerk
    from clerk_sessions._sync import Clerk

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


def __getattr__(name: str) -> Any:
    # The clients load on first use. The sync facade (and the portal machinery under it):
    # async applications never pay for its import. The async client (httpx2, httpcore2,
    # cattrs): code that only needs the models or a job store, such as
    # `RevocationJob.create` filling a store from a process that never calls Clerk,
    # never pays for the HTTP stack (about 20 MB of RSS and its import time).
    if name == "AsyncClerk":
        from clerk_sessions._client import AsyncClerk

        globals()["AsyncClerk"] = AsyncClerk
        return AsyncClerk
    if name == "Clerk":
        from clerk_sessions._sync import Clerk

        globals()["Clerk"] = Clerk
        return Clerk
    raise AttributeError(f"module 'clerk_sessions' has no attribute {name!r}")
