"""Shared pieces for the verification tests: the fixture vectors, a token minter, fake
clocks and a scriptable JWKS endpoint."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from clerk_sessions._verification import TokenVerifier
from tests.conftest import FIXTURES_DIR

VECTORS: dict[str, Any] = json.loads((FIXTURES_DIR / "session-tokens.json").read_text())
FROZEN_NOW: int = VECTORS["frozen_now"]
KID: str = VECTORS["kid"]
PUBLIC_KEY_PEM: str = VECTORS["public_key_pem"]
PRIVATE_KEY = serialization.load_pem_private_key(VECTORS["private_key_pem"].encode(), password=None)
assert isinstance(PRIVATE_KEY, rsa.RSAPrivateKey)
# A second key, for wrong-key and rotation tests; generated once per test session.
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KID = "ins_rotated_key"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def payload(**overrides: Any) -> dict[str, Any]:
    """A valid session payload at FROZEN_NOW; keyword None removes a claim."""
    claims: dict[str, Any] = dict(VECTORS["valid_payload"])
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def mint(
    claims: dict[str, Any] | None = None,
    *,
    key: rsa.RSAPrivateKey = PRIVATE_KEY,
    kid: str | None = KID,
    header: dict[str, Any] | None = None,
) -> str:
    """An RS256 token over ``claims`` (default: the valid payload); ``header`` extends or
    overrides the header, a None value removing the field."""
    fields: dict[str, Any] = {"alg": "RS256", "typ": "JWT", "kid": kid}
    fields.update(header or {})
    fields = {name: value for name, value in fields.items() if value is not None}
    signing_input = f"{b64json(fields)}.{b64json(payload() if claims is None else claims)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()

    def uint(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": uint(numbers.n),
        "e": "AQAB",
    }


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class Clock:
    """A settable clock: ``clock()`` returns ``clock.t``."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeJwks:
    """A scriptable ``fetch_jwks``: serves ``jwks``, counts calls, can fail or hold each
    call until ``release()``."""

    def __init__(self, *keys: dict[str, str]) -> None:
        self.jwks: dict[str, Any] = {"keys": list(keys)}
        self.calls = 0
        self.error: Exception | None = None
        self.hold = False
        self._gate: anyio.Event | None = None

    def release(self) -> None:
        assert self._gate is not None
        self._gate.set()

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.hold:
            self._gate = anyio.Event()
            await self._gate.wait()
        if self.error is not None:
            raise self.error
        return self.jwks


@pytest.fixture
def now() -> Clock:
    """The wall clock the time claims are checked against, frozen at the vectors' time."""
    return Clock(FROZEN_NOW)


@pytest.fixture
def clock() -> Clock:
    """The monotonic clock of the refetch cooldown."""
    return Clock(1000.0)


@pytest.fixture
def jwks() -> FakeJwks:
    return FakeJwks(VECTORS["jwks"]["keys"][0])


@pytest.fixture
def make_verifier(now: Clock, clock: Clock, jwks: FakeJwks) -> Callable[..., TokenVerifier]:
    def make(fetch: Any = None, **kwargs: Any) -> TokenVerifier:
        return TokenVerifier(jwks if fetch is None else fetch, clock=clock, now=now, **kwargs)

    return make


@pytest.fixture
def verifier(make_verifier: Callable[..., TokenVerifier]) -> TokenVerifier:
    return make_verifier()


async def no_network() -> dict[str, Any]:
    pytest.fail("fetch_jwks was called although no network was expected")
