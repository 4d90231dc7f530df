"""The Django app: add ``"clerk_sessions.django"`` to ``INSTALLED_APPS`` for its checks."""

# Django ships no type information: its names are unknown to pyright.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false

from __future__ import annotations

from django.apps import AppConfig


class ClerkSessionsConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    """Registers the configuration checks (``manage.py check``)."""

    name = "clerk_sessions.django"
    # The default label would be "django", which reads like Django's own.
    label = "clerk_sessions"
    verbose_name = "Clerk sessions"

    def ready(self) -> None:
        from django.core import checks

        from clerk_sessions.django.checks import check_settings

        checks.register(check_settings, "clerk_sessions")
