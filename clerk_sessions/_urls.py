"""URLs as messages and logs may show them: without their password."""

from __future__ import annotations

import re

__all__ = ["redact_url"]

# A password given as a query parameter (coredis reads ``?password=``).
_PASSWORD_PARAMETER = re.compile(r"(?i)([?&]password=)[^&#]*")


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``.

    The password is whatever lies between the scheme and the last ``@`` (the username,
    before its first colon, is kept), and any ``password=`` query parameter. An
    unencoded ``/``, ``?``, ``#`` or ``@`` in a password confuses URL parsers but not
    this: it hides too much rather than too little. A string without ``://`` (a file
    path) has no password and is returned as it is.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    credentials, at, location = rest.rpartition("@")
    if at:
        user, colon, _ = credentials.partition(":")
        rest = f"{user}:***@{location}" if colon else f"***@{location}"
    return f"{scheme}://" + _PASSWORD_PARAMETER.sub(r"\1***", rest)
