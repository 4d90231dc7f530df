"""Session tokens as Clerk mints them: the claims, the signing key, and its JWKS.

Tokens follow Clerk's v2 session token: ``azp``, ``exp``, ``fva``, ``iat``, ``iss``,
``nbf`` (``iat - 10``), ``sid``, ``sts``, ``sub``, ``v: 2``, ``o`` when the session has an
active organization, default lifetime 60 s. Template tokens carry Clerk's default
template claims (``azp``, ``exp``, ``iat``, ``iss``, ``jti``, ``nbf``, ``sub``) plus the
template's claims, where a string value that is exactly a shortcode (``{{session.id}}``,
``{{user.id}}``, ``{{org.id}}``, ``{{org.role}}``, ``{{org.slug}}``) is replaced; no
``sid`` unless the template asks for it, as in Clerk.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from ._keys import SigningKey
from ._state import StoredSession, Template, random_base62

_TOKEN_LIFETIME_S = 60


class TokenMinter:
    """Mints and reads back the tokens of one fake instance.

    Args:
        clock: unix time in seconds (``iat``, ``exp``, ``nbf``, ``fva``).
        issuer: the ``iss`` of minted tokens.
        authorized_party: the ``azp`` of minted tokens.
        random_bytes: the source of template tokens' ``jti``.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        issuer: str,
        authorized_party: str,
        random_bytes: Callable[[int], bytes],
    ) -> None:
        self.clock = clock
        self.issuer = issuer
        self.authorized_party = authorized_party
        self._random_bytes = random_bytes
        self.key = SigningKey("ins_" + random_base62(27))

    def rotate(self) -> str:
        """Replace the signing key (new ``kid``) and return the new ``kid``."""
        self.key = SigningKey("ins_" + random_base62(27))
        return self.key.kid

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set that ``GET /jwks`` answers."""
        return {"keys": [self.key.jwk()]}

    def mint(
        self,
        session: StoredSession,
        template: Template | None,
        expires_in: int | None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed token for ``session`` (through ``template`` when given)."""
        claims = self.claims(session, template, expires_in)
        claims.update(extra_claims or {})
        return self.key.sign(claims)

    def decode(self, token: str) -> dict[str, Any] | None:
        """The claims of a token the current key signed (expiry not checked), else None."""
        return self.key.decode(token)

    def claims(
        self, session: StoredSession, template: Template | None, expires_in: int | None
    ) -> dict[str, Any]:
        """The claims Clerk puts in a session token, or in a template's token."""
        now = self.clock()
        iat = int(now)
        if template is not None:
            return self._template_claims(session, template, expires_in, iat)
        minutes = max(0, (int(now * 1000) - session.created_at) // 60_000)
        claims: dict[str, Any] = {
            "azp": self.authorized_party,
            "exp": iat + (expires_in or _TOKEN_LIFETIME_S),
            "fva": [minutes, -1],
            "iat": iat,
            "iss": self.issuer,
            "nbf": iat - 10,
            "sid": session.id,
            "sts": session.status,
            "sub": session.user_id,
            "v": 2,
        }
        if session.last_active_organization_id:
            claims["o"] = {
                "id": session.last_active_organization_id,
                "rol": session.org_role,
                "slg": session.org_slug or session.last_active_organization_id,
            }
        return claims

    def _template_claims(
        self, session: StoredSession, template: Template, expires_in: int | None, iat: int
    ) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "azp": self.authorized_party,
            "exp": iat + (expires_in or template.lifetime),
            "iat": iat,
            "iss": self.issuer,
            "jti": base64.b16encode(self._random_bytes(10)).decode().lower(),
            "nbf": iat - 10,
            "sub": session.user_id,
        }
        shortcodes = {
            "{{session.id}}": session.id,
            "{{user.id}}": session.user_id,
            "{{org.id}}": session.last_active_organization_id,
            "{{org.role}}": session.org_role if session.last_active_organization_id else None,
            "{{org.slug}}": session.org_slug,
        }
        for name, value in template.claims.items():
            if isinstance(value, str) and value in shortcodes:
                claims[name] = shortcodes[value]
            else:
                claims[name] = value
        return claims
