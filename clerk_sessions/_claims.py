"""The decoded claims of a verified session token, and the outcome of authenticating a request.

Clerk issues session tokens in two claim formats, and both are decoded into the same
``SessionClaims``:

- version 1 (no ``v`` claim): ``org_id``, ``org_role``, ``org_slug`` and
  ``org_permissions`` at top level;
- version 2 (``"v": 2``): the active organization nested under ``o`` (``id``, ``rol``,
  ``slg``, ``per``, ``fpm``), features in ``fea`` and the plan in ``pla``.

The v2 encoding, as documented at https://clerk.com/docs/guides/sessions/session-tokens
and as Clerk's own SDK decodes it (clerk/javascript, packages/shared/src/jwtPayloadParser.ts
and ``splitByScope`` in packages/shared/src/authorization.ts):

- ``o.rol`` is the role key without its ``org:`` prefix, which v1 carried;
- ``fea`` is a comma-separated list of ``scope:name`` entries, scope ``o``
  (organization), ``u`` (user) or ``ou``/``uo`` (both);
- ``o.per`` is a comma-separated list of permission names and ``o.fpm`` a
  comma-separated list of decimal bit masks, one per organization-scoped feature, in
  the order those features appear in ``fea``; bit ``i`` (least significant first) of a
  feature's mask grants ``per[i]`` for that feature, which is the v1 permission key
  ``org:<feature>:<permission>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import attrs

__all__ = ["RequestState", "SessionClaims", "claims_from_payload"]


def _empty_payload() -> dict[str, Any]:
    return {}


def _to_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@attrs.frozen(kw_only=True)
class SessionClaims:
    """The claims of a verified Clerk session token.

    Timestamps are the token's integers (unix seconds); each has a ``*_dt`` property
    giving the same instant as an aware UTC ``datetime``.
    """

    #: ``sid``: the session's id.
    session_id: str
    #: ``sub``: the id of the signed-in user.
    user_id: str
    #: ``sts``: the session's status (``"active"``, ``"pending"``), when the token has it.
    session_status: str | None = None
    #: ``azp``: the origin the token was requested from, when the token has it.
    authorized_party: str | None = None
    #: ``iss``: the Frontend API URL of the instance that issued the token.
    issuer: str | None = None
    #: ``iat``: when the token was issued.
    issued_at: int | None = None
    #: ``exp``: when the token expires.
    expires_at: int
    #: ``nbf``: when the token becomes valid.
    not_before: int | None = None
    #: The active organization's id (v1 ``org_id``, v2 ``o.id``).
    org_id: str | None = None
    #: The user's role in the active organization, e.g. ``"org:admin"``.
    org_role: str | None = None
    #: The active organization's slug (v1 ``org_slug``, v2 ``o.slg``).
    org_slug: str | None = None
    #: Permission keys in the active organization, e.g. ``("org:invoices:read",)``.
    org_permissions: tuple[str, ...] = ()
    #: ``act``: the impersonating actor (``{"sub": ...}``), when the session is impersonated.
    actor: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    #: ``fea``: the enabled features as the token writes them, e.g. ``("o:reports", "u:chat")``.
    features: tuple[str, ...] = ()
    #: ``pla``: the active plan as the token writes it, e.g. ``"u:free_user"``.
    plan: str | None = None
    #: The claim format: 2 when the token says ``"v": 2``, else 1.
    version: int = 1
    #: The whole verified payload, for custom claims.
    raw: dict[str, Any] = attrs.field(factory=_empty_payload, hash=False, repr=False)

    @property
    def expires_at_dt(self) -> datetime:
        """``expires_at`` as an aware UTC datetime."""
        return _to_datetime(self.expires_at)

    @property
    def issued_at_dt(self) -> datetime | None:
        """``issued_at`` as an aware UTC datetime."""
        return None if self.issued_at is None else _to_datetime(self.issued_at)

    @property
    def not_before_dt(self) -> datetime | None:
        """``not_before`` as an aware UTC datetime."""
        return None if self.not_before is None else _to_datetime(self.not_before)


@attrs.frozen(kw_only=True)
class RequestState:
    """The outcome of authenticating a request.

    ``is_signed_in`` is True only for a verified token of an active session (or of a
    pending one, when asked to accept those). Otherwise ``reason`` holds the
    verification reason code (``missing_token`` when the request carried none).
    ``claims`` is set whenever the token verified, including for a pending session.
    """

    is_signed_in: bool
    reason: str | None = None
    token: str | None = attrs.field(default=None, repr=False)
    claims: SessionClaims | None = None


def _mapping(value: object) -> Mapping[str, Any] | None:
    return cast("Mapping[str, Any]", value) if isinstance(value, Mapping) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _seconds(value: object) -> int | None:
    # NumericDate may be fractional (RFC 7519 section 2); the fields keep whole seconds.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        return math.floor(value) if math.isfinite(value) else None
    return value


def _str_tuple(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in cast("list[object]", value) if isinstance(item, str))


def _split_list(value: object) -> list[str]:
    if not isinstance(value, str):
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _org_features(features: list[str]) -> list[str]:
    names: list[str] = []
    for entry in features:
        scope, colon, name = entry.partition(":")
        # Entries without a scope are skipped rather than fatal: the token is already
        # verified, and one odd entry should not cost the user their session.
        if colon and scope in ("o", "ou", "uo"):
            names.append(name)
    return names


def _mask(value: str) -> int:
    # Masks are arbitrary-length decimals (Clerk's JS parses them digit by digit because
    # they outgrow 53 bits); a mask that is not a decimal grants nothing.
    return int(value) if value.isascii() and value.isdigit() else 0


def _v2_permissions(org: Mapping[str, Any], features: list[str]) -> tuple[str, ...]:
    permissions = _split_list(org.get("per"))
    masks = _split_list(org.get("fpm"))
    if not permissions or not masks:
        return ()
    granted: list[str] = []
    for feature, mask in zip(_org_features(features), masks, strict=False):
        bits = _mask(mask)
        granted.extend(
            f"org:{feature}:{permission}"
            for index, permission in enumerate(permissions)
            if bits >> index & 1
        )
    return tuple(granted)


def claims_from_payload(payload: dict[str, Any]) -> SessionClaims:
    """Decode a verified payload (v1 or v2) into ``SessionClaims``.

    The caller has checked that ``sid``, ``sub`` and ``exp`` are present and typed;
    optional claims of an unexpected type are treated as absent.
    """
    features = _split_list(payload.get("fea"))
    actor = _mapping(payload.get("act"))
    common: dict[str, Any] = {
        "session_id": payload["sid"],
        "user_id": payload["sub"],
        "session_status": _str(payload.get("sts")),
        "authorized_party": _str(payload.get("azp")),
        "issuer": _str(payload.get("iss")),
        "issued_at": _seconds(payload.get("iat")),
        "expires_at": _seconds(payload["exp"]),
        "not_before": _seconds(payload.get("nbf")),
        "actor": None if actor is None else dict(actor),
        "features": tuple(features),
        "plan": _str(payload.get("pla")),
        "raw": payload,
    }
    if payload.get("v") == 2:
        org = _mapping(payload.get("o"))
        if org is None:
            return SessionClaims(version=2, **common)
        role = _str(org.get("rol"))
        return SessionClaims(
            version=2,
            org_id=_str(org.get("id")),
            org_role=None if role is None else f"org:{role}",
            org_slug=_str(org.get("slg")),
            org_permissions=_v2_permissions(org, features),
            **common,
        )
    permissions: object = payload.get("org_permissions")
    return SessionClaims(
        version=1,
        org_id=_str(payload.get("org_id")),
        org_role=_str(payload.get("org_role")),
        org_slug=_str(payload.get("org_slug")),
        org_permissions=_str_tuple(permissions),
        **common,
    )
