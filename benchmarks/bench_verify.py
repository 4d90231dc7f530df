"""``verify_token`` per call with the key already loaded (networkless verification).

The token is minted here with a throwaway 2048-bit RSA key, like a Clerk session token
(v2 claims: ``sub``, ``sid``, ``sts``, ``azp``, ``iss``, ``exp``/``nbf``/``iat``):

- ours: ``AsyncClerk.verify_token(token, jwt_key=PEM)`` (the parsed key is cached);
- raw: PyJWT ``jwt.decode`` with a preloaded public key object, the floor: a signature
  check plus PyJWT's own claim checks, no Clerk rules (no HTTP client is involved, so
  the row has no raw httpx column);
- official: ``clerk_backend_api.security.verify_token(token, VerifyTokenOptions(
  jwt_key=PEM))``.

The RSA signature check (in ``cryptography``) is most of every contender's time, so
these ratios sit near 1 by nature; the row shows what each SDK adds around it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks._common import SECRET_KEY, interleave_async, row
from clerk_sessions import AsyncClerk

__all__ = ["mint_token", "run"]


def mint_token() -> tuple[str, str, Any]:
    """A signed session token, the PEM public key, and the loaded public key."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    now = int(time.time())
    claims = {
        "azp": "https://app.example.com",
        "exp": now + 3600,
        "fva": [0, -1],
        "iat": now,
        "iss": "https://clerk.example.com",
        "jti": "e4f1a0d2c3b4a5968778",
        "nbf": now - 5,
        "sid": "sess_2bBnmXaAaMHPOXoCaKQd5mJ2T1M",
        "sts": "active",
        "sub": "user_2bBnmTL0bHxl9ZbKsGk0000000",
        "v": 2,
    }
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "ins_bench"})
    return token, pem, public


async def _measure(quick: bool) -> list[dict[str, Any]]:
    import jwt

    rounds, inner = (3, 5) if quick else (40, 50)
    token, pem, public = mint_token()
    notes = ""
    async with AsyncClerk(SECRET_KEY, server_url="http://127.0.0.1:9/v1") as ours:

        async def ours_verify() -> Any:
            return await ours.verify_token(token, jwt_key=pem)

        async def raw_verify() -> Any:
            return jwt.decode(token, public, algorithms=["RS256"], leeway=5)

        contenders = {"ours": ours_verify, "raw": raw_verify}
        try:
            from clerk_backend_api.security import verify_token
            from clerk_backend_api.security.types import VerifyTokenOptions

            options = VerifyTokenOptions(jwt_key=pem)

            async def official_verify() -> Any:
                return verify_token(token, options)

            contenders["official"] = official_verify
        except ImportError:
            notes = "official column skipped: clerk_backend_api not importable"
        for name, fn in contenders.items():
            claims = await fn()
            sid = claims.session_id if name == "ours" else claims["sid"]
            assert sid == "sess_2bBnmXaAaMHPOXoCaKQd5mJ2T1M", name
        times = await interleave_async(contenders, rounds, inner=inner)
    return [
        row(
            "verify_token (cached key)",
            times["ours"] * 1e6,
            times["raw"] * 1e6,
            times["official"] * 1e6 if "official" in times else None,
            "us/call",
            floor="PyJWT jwt.decode",
            notes=("raw = PyJWT jwt.decode with a preloaded key. " + notes).strip(),
        )
    ]


def run(quick: bool, server: object = None) -> list[dict[str, Any]]:
    """One row: token verification per call; ``server`` is not used (no network)."""
    return asyncio.run(_measure(quick))
