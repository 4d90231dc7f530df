"""`ClerkUser`: a signed-in Clerk user where Django code expects ``request.user``."""

from __future__ import annotations

from typing import Any

from clerk_sessions.models import SessionClaims

__all__ = ["ClerkUser"]


class ClerkUser:
    """A signed-in Clerk user, built from the session token alone.

    It is what Django REST framework's ``request.user`` is under `ClerkAuthentication`,
    and answers what Django's and DRF's code ask a user: ``is_authenticated`` is True,
    ``is_anonymous`` False, ``pk``, ``id`` and ``username`` are the Clerk user id, so
    ``IsAuthenticated`` and per-user throttling work. It is not a database row: it has no
    groups, and the Django permissions (``has_perm``) are all False, as are
    ``is_staff`` and ``is_superuser``. The session, organization, role and permissions
    from Clerk are in ``claims`` (`SessionClaims`).
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, claims: SessionClaims) -> None:
        self.claims = claims

    @property
    def pk(self) -> str:
        """The Clerk user id."""
        return self.claims.user_id

    @property
    def id(self) -> str:
        """The Clerk user id."""
        return self.claims.user_id

    @property
    def username(self) -> str:
        """The Clerk user id (the token carries no name)."""
        return self.claims.user_id

    def get_username(self) -> str:
        """The Clerk user id, as Django's users answer it."""
        return self.claims.user_id

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """False: Django's model permissions belong to database users (read Clerk's
        in ``claims.org_permissions``)."""
        return False

    def has_perms(self, perm_list: Any, obj: Any = None) -> bool:
        """False, as `has_perm`."""
        return False

    def has_module_perms(self, app_label: str) -> bool:
        """False, as `has_perm`."""
        return False

    def __str__(self) -> str:
        return self.claims.user_id

    def __repr__(self) -> str:
        return f"ClerkUser(user_id={self.claims.user_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClerkUser) and other.pk == self.pk

    def __hash__(self) -> int:
        return hash(self.pk)
