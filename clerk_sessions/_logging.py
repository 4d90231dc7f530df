"""The ``clerk_sessions`` logger, and ``CLERK_SESSIONS_LOG``.

What is logged, and where (the records themselves are written where things happen):

- DEBUG, one per attempt that ended (`log_attempt`, from `clerk_sessions._http.transport`):
  method, path and
  query, status or the transport error's name, elapsed ms, attempt number, trace id.
  Also sent to a client's ``debug_logger``.
- INFO, one per retry decision (`clerk_sessions._retry`), with the wait.
- WARNING: a failed JWKS refresh while older keys stay in use, a shared quota that
  fell back to the in-process one.

No record carries a header or a body: they hold the secret key, session tokens and
refresh tokens.

``CLERK_SESSIONS_LOG=debug|info|warning`` makes the first client built in the process
attach a stderr handler at that level (as ``OPENAI_LOG`` does for OpenAI's SDK), for
when an application's logging is not set up and someone needs to see the requests now.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from clerk_sessions._errors import ConfigurationError

__all__ = ["ENV_VARIABLE", "configure_logging_from_env", "log_attempt", "logger"]

logger = logging.getLogger("clerk_sessions")

ENV_VARIABLE = "CLERK_SESSIONS_LOG"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}

_lock = threading.Lock()
_configured = False


def configure_logging_from_env() -> None:
    """Attach a stderr handler to ``clerk_sessions`` at the level ``CLERK_SESSIONS_LOG``
    names, once per process (the first client built does it; later ones check nothing
    but a flag)."""
    global _configured
    if _configured:
        return
    value = os.environ.get(ENV_VARIABLE, "").strip().lower()
    if not value:
        return
    level = _LEVELS.get(value)
    if level is None:
        raise ConfigurationError(
            f"{ENV_VARIABLE}={value!r} is not a level: use debug, info or warning "
            f"(or unset {ENV_VARIABLE})"
        )
    with _lock:
        if _configured:
            return
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(level)
        logger.addHandler(handler)
        logger.setLevel(level)
        _configured = True


def log_attempt(
    debug_logger: logging.Logger | None,
    method: str,
    path: str,
    outcome: int | str,
    sent_at: float,
    attempt: int,
    trace_id: str | None,
) -> None:
    """One DEBUG record for an attempt that ended: to ``clerk_sessions`` and to the
    ``debug_logger``. Only the method, the path and query, and what came back: never
    a header or a body, which carry the key and tokens."""
    elapsed_ms = (time.perf_counter() - sent_at) * 1000
    message = "%s %s -> %s in %.1f ms (attempt %d, trace id %s)"
    args = (method, path, outcome, elapsed_ms, attempt, trace_id)
    extra = {
        "clerk_method": method,
        "clerk_path": path,
        "clerk_outcome": outcome,
        "clerk_elapsed_ms": elapsed_ms,
        "clerk_attempt": attempt,
        "clerk_trace_id": trace_id,
    }
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(message, *args, extra=extra)
    if debug_logger is not None and debug_logger.isEnabledFor(logging.DEBUG):
        debug_logger.debug(message, *args, extra=extra)
