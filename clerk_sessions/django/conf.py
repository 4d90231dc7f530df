"""The ``CLERK_*`` Django settings, read at first use rather than at import.

Reading lazily lets ``clerk_sessions.django`` be imported before settings are
configured (by ``INSTALLED_APPS`` loading, by a test runner), and the cache is dropped
whenever a ``CLERK_*`` setting changes (``override_settings``, pytest-django's
``settings`` fixture), so tests see their own values.
"""

# Django ships no type information: its names are unknown to pyright.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import cast

import attrs
from django.conf import settings
from django.core.signals import setting_changed

__all__ = ["SETTING_NAMES", "ClerkSettings", "clerk_settings"]

#: Every setting this integration reads.
SETTING_NAMES = frozenset(
    {"CLERK_SECRET_KEY", "CLERK_API_URL", "CLERK_AUTHORIZED_PARTIES", "CLERK_JWT_KEY"}
)


@attrs.frozen(kw_only=True)
class ClerkSettings:
    """The integration's settings, as read from ``django.conf.settings``.

    ``secret_key`` and ``api_url`` are None when the setting is absent or empty; the
    client then falls back to the ``CLERK_SECRET_KEY`` and ``CLERK_API_URL``
    environment variables, as `AsyncClerk` does everywhere.
    """

    #: ``CLERK_SECRET_KEY``: the instance's secret key.
    secret_key: str | None = attrs.field(default=None, repr=False)
    #: ``CLERK_API_URL``: the Backend API base URL.
    api_url: str | None = None
    #: ``CLERK_AUTHORIZED_PARTIES``: the origins accepted in a token's ``azp`` (None: any).
    authorized_parties: frozenset[str] | None = None
    #: ``CLERK_JWT_KEY``: the instance's PEM public key, to verify without ``/jwks``.
    jwt_key: str | None = attrs.field(default=None, repr=False)

    @property
    def has_secret_key(self) -> bool:
        """Whether a secret key is configured, in settings or in the environment."""
        return bool(self.secret_key or os.environ.get("CLERK_SECRET_KEY"))


def _optional_str(name: str) -> str | None:
    value: object = getattr(settings, name, None)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"settings.{name} must be a string, got {type(value).__name__}")
    return value


def _parties() -> frozenset[str] | None:
    value: object = getattr(settings, "CLERK_AUTHORIZED_PARTIES", None)
    if value is None:
        return None
    # A str is an iterable of one-character "origins": refuse it rather than match "h".
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(
            "settings.CLERK_AUTHORIZED_PARTIES must be a list of origins, "
            f"got {type(value).__name__}"
        )
    parties = list(cast("Iterable[object]", value))
    if not all(isinstance(party, str) for party in parties):
        raise TypeError("settings.CLERK_AUTHORIZED_PARTIES must hold only strings")
    return frozenset(cast("list[str]", parties)) or None


def read_settings() -> ClerkSettings:
    """Read the settings now, uncached. Raises `TypeError` for a value of a wrong type."""
    return ClerkSettings(
        secret_key=_optional_str("CLERK_SECRET_KEY"),
        api_url=_optional_str("CLERK_API_URL"),
        authorized_parties=_parties(),
        jwt_key=_optional_str("CLERK_JWT_KEY"),
    )


_lock = threading.Lock()
_cached: ClerkSettings | None = None


def clerk_settings() -> ClerkSettings:
    """The settings, read once (at first use) and cached until a ``CLERK_*`` one changes."""
    global _cached
    cached = _cached
    if cached is None:
        with _lock:
            if _cached is None:
                _cached = read_settings()
            cached = _cached
    return cached


def _forget(*, setting: str, **_: object) -> None:
    global _cached
    if setting in SETTING_NAMES:
        _cached = None


setting_changed.connect(_forget, dispatch_uid="clerk_sessions.django.conf")


def _new_lock_in_child() -> None:
    # A lock held by another thread at fork time would stay held forever in the child.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)
