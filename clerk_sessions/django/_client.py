"""The clients for Django, built from the settings at first use: the process-wide sync
`Clerk` for sync code, and one `AsyncClerk` per event loop for async code."""

# Django ships no type information: its names are unknown to pyright.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false

from __future__ import annotations

import os
import threading

from django.core.signals import setting_changed

from clerk_sessions import AsyncClerk, Clerk
from clerk_sessions._eventloop import PerLoop
from clerk_sessions.django.conf import SETTING_NAMES, clerk_settings
from clerk_sessions.errors import AsyncContextError

__all__ = ["aget_client", "get_client"]

_lock = threading.Lock()
_client: Clerk | None = None


def get_client() -> Clerk:
    """The process-wide `Clerk`, built from the ``CLERK_*`` settings on first use.

    One client serves every thread of the process (it holds the connection pool and the
    JWKS cache). It is safe to create before a pre-fork server forks: the child starts
    its own event loop and pool on its first call. Call it from sync code only (a view,
    a management command, a Celery task); in async code the sync client refuses to run:
    use `aget_client` there.
    """
    client = _client
    if client is None:
        client = _build()
    return client


def _build() -> Clerk:
    global _client
    with _lock:
        if _client is None:
            conf = clerk_settings()
            _client = Clerk(conf.secret_key, server_url=conf.api_url)
        return _client


def _open_async() -> AsyncClerk:
    conf = clerk_settings()
    return AsyncClerk(conf.secret_key, server_url=conf.api_url)


_async_clients = PerLoop(_open_async, name="AsyncClerk")


async def aget_client() -> AsyncClerk:
    """The running event loop's `AsyncClerk`, built from the ``CLERK_*`` settings on first
    use in that loop, for async views and ASGI consumers (no ``sync_to_async``, no
    thread hop).

    Every task of one loop shares one client (its connection pool and JWKS cache); it is
    closed when the loop ends. Under an ASGI server (uvicorn, daphne, hypercorn) that is
    one client for the whole process. Under WSGI, Django runs each async view on a loop
    of its own, so each such request builds (and closes) a client: serve async views
    with ASGI. After a ``CLERK_*`` setting changes, the next call builds a new client.
    """
    return await _async_clients.get()


def _close(client: Clerk) -> None:
    try:
        client.close()
    except AsyncContextError:
        # Settings were changed from async code (an async test): close off the loop.
        threading.Thread(target=client.close, name="clerk-close", daemon=True).start()


def _forget(*, setting: str, **_: object) -> None:
    global _client
    if setting in SETTING_NAMES:
        _async_clients.renew()
        with _lock:
            client, _client = _client, None
        if client is not None:
            _close(client)


setting_changed.connect(_forget, dispatch_uid="clerk_sessions.django.client")


def _new_lock_in_child() -> None:
    # The client itself survives a fork (its portal resets in the child); a lock held by
    # another thread at fork time would not.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)
