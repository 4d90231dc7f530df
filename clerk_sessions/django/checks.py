"""System checks (``manage.py check``) for the ``CLERK_*`` settings.

They run at startup of ``runserver`` and ``migrate`` and in CI's ``manage.py check``, so
a missing secret key is reported before the first request instead of by it.
"""

# Django ships no type information: its names are unknown to pyright.
# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false

from __future__ import annotations

import os
from typing import Any

from django.core import checks

from clerk_sessions.django.conf import read_settings
from clerk_sessions.errors import TokenVerificationError

__all__ = ["check_settings"]

_KEY_HINT = (
    "Set CLERK_SECRET_KEY in your settings (or in the environment) to the instance's "
    "secret key, found under API Keys in the Clerk Dashboard."
)


def _parties_in_environment() -> bool:
    # The clients fall back to this variable when the setting is unset (comma-separated).
    return any(part.strip() for part in os.environ.get("CLERK_AUTHORIZED_PARTIES", "").split(","))


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report missing or malformed ``CLERK_*`` settings.

    - ``clerk_sessions.E001``: no secret key, in settings or the environment;
    - ``clerk_sessions.E002``: a setting has the wrong type (e.g. a string for
      ``CLERK_AUTHORIZED_PARTIES``);
    - ``clerk_sessions.E003``: ``CLERK_JWT_KEY`` is not a usable RSA public key;
    - ``clerk_sessions.W001``: no authorized parties, in settings or the environment: a
      session token that Clerk issued to any site of the instance would be accepted.
    """
    try:
        conf = read_settings()
    except TypeError as exc:
        return [
            checks.Error(
                str(exc),
                hint="CLERK_SECRET_KEY, CLERK_API_URL and CLERK_JWT_KEY are strings; "
                'CLERK_AUTHORIZED_PARTIES is a list such as ["https://example.com"].',
                id="clerk_sessions.E002",
            )
        ]
    errors: list[checks.CheckMessage] = []
    if not conf.has_secret_key:
        errors.append(
            checks.Error(
                "No Clerk secret key is configured.", hint=_KEY_HINT, id="clerk_sessions.E001"
            )
        )
    if conf.authorized_parties is None and not _parties_in_environment():
        errors.append(
            checks.Warning(
                "CLERK_AUTHORIZED_PARTIES is not set: a session token issued for any "
                "origin (the token's azp claim) is accepted.",
                hint="List the origins of your frontends, e.g. CLERK_AUTHORIZED_PARTIES = "
                '["https://app.example.com"], so that a token obtained by another site '
                "cannot be replayed here.",
                id="clerk_sessions.W001",
            )
        )
    if conf.jwt_key is not None:
        # The verifier's own PEM loader: the check accepts exactly what verification will.
        from clerk_sessions.verification import load_pem

        try:
            load_pem(conf.jwt_key)
        except TokenVerificationError as exc:
            errors.append(
                checks.Error(
                    f"CLERK_JWT_KEY is unusable: {exc}",
                    hint="Copy the PEM public key from API Keys > Show JWT public key in the "
                    "Clerk Dashboard, or remove the setting to fetch keys from /jwks.",
                    id="clerk_sessions.E003",
                )
            )
    return errors
