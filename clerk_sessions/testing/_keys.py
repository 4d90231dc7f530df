"""The fake instance's RS256 signing key, its JWKS, and token minting."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class SigningKey:
    """One RSA key pair with a ``kid``, generated on first use.

    Generation costs tens of milliseconds; most fakes in a test suite never mint a
    token, so it waits until someone asks.
    """

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self._lock = threading.Lock()
        self._private: rsa.RSAPrivateKey | None = None

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The private key (generated on first access)."""
        with self._lock:
            if self._private is None:
                self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._private

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The public half."""
        return self.private_key.public_key()

    def public_key_pem(self) -> str:
        """The public key as a PEM ``SubjectPublicKeyInfo`` block (what ``jwt_key`` takes)."""
        return (
            self.public_key.public_bytes(
                encoding=serialization.Encoding.PEM,
                format=serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            .decode("ascii")
            .strip()
        )

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK with ``kid``, ``alg`` and ``use``, as Clerk publishes it."""
        raw: dict[str, Any] = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": str(raw["n"]),
            "e": str(raw["e"]),
        }

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Sign ``claims`` as an RS256 JWT whose header names this key's ``kid``."""
        return jwt.encode(
            dict(claims), self.private_key, algorithm="RS256", headers={"kid": self.kid}
        )

    def decode(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this key signed (expiry not checked), else None."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.kid:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None
        return claims
