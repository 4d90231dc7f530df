"""TokenVerifier.verify: what it accepts and, for everything else, the reason it gives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from clerk_sessions import _verification
from clerk_sessions._errors import TokenVerificationError
from clerk_sessions._verification import MAX_TOKEN_LENGTH, TokenVerifier
from clerk_sessions.verification import Reason

from .conftest import (
    FROZEN_NOW,
    KID,
    OTHER_KEY,
    PRIVATE_KEY,
    PUBLIC_KEY_PEM,
    VECTORS,
    Clock,
    FakeJwks,
    b64json,
    b64url,
    mint,
    payload,
)

pytestmark = pytest.mark.anyio


async def reason_of(verifier: TokenVerifier, token: str, **kwargs: Any) -> str:
    with pytest.raises(TokenVerificationError) as info:
        await verifier.verify(token, **kwargs)
    assert type(info.value.reason) is Reason
    return info.value.reason


# --- the fixture vectors ------------------------------------------------------------


async def test_valid_fixture_token_verifies(verifier: TokenVerifier) -> None:
    claims = await verifier.verify(VECTORS["valid_jwt"])
    expected = VECTORS["valid_payload"]
    assert claims.session_id == expected["sid"]
    assert claims.user_id == expected["sub"]
    assert claims.authorized_party == expected["azp"]
    assert claims.issuer == expected["iss"]
    assert (claims.issued_at, claims.expires_at, claims.not_before) == (
        expected["iat"],
        expected["exp"],
        expected["nbf"],
    )
    assert claims.raw == expected
    assert claims.version == 1


async def test_expired_fixture_token_is_rejected(verifier: TokenVerifier) -> None:
    assert await reason_of(verifier, VECTORS["expired_jwt"]) == "token_expired"


async def test_fixture_token_with_bad_signature_is_rejected(verifier: TokenVerifier) -> None:
    assert await reason_of(verifier, VECTORS["invalid_signature_jwt"]) == "invalid_signature"


async def test_malformed_fixture_token_fails_on_its_signature(verifier: TokenVerifier) -> None:
    # Clerk's "malformed" vector is well-formed JWS whose signature does not match; the
    # signature is checked before the (missing) claims.
    assert await reason_of(verifier, VECTORS["malformed_jwt"]) == "invalid_signature"


async def test_signed_payload_without_exp_is_missing_a_claim(verifier: TokenVerifier) -> None:
    token = mint({"iat": FROZEN_NOW})
    assert await reason_of(verifier, token) == "missing_claim"


async def test_jwt_key_verifies_without_any_fetch(now: Clock) -> None:
    fetch = FakeJwks()
    fetch.error = AssertionError("fetch_jwks must not be called when jwt_key is given")
    verifier = TokenVerifier(fetch, now=now)
    claims = await verifier.verify(VECTORS["valid_jwt"], jwt_key=PUBLIC_KEY_PEM)
    assert claims.user_id == VECTORS["valid_payload"]["sub"]
    assert await reason_of(verifier, VECTORS["invalid_signature_jwt"], jwt_key=PUBLIC_KEY_PEM) == (
        "invalid_signature"
    )
    # A kid the JWKS never had does not matter either: jwt_key is the key.
    assert await verifier.verify(mint(kid="ins_unknown"), jwt_key=PUBLIC_KEY_PEM)
    assert fetch.calls == 0


async def test_jwt_key_of_another_instance_fails_the_signature(now: Clock) -> None:
    verifier = TokenVerifier(FakeJwks(), now=now)
    other = VECTORS["unrelated_public_key_pem"]
    assert await reason_of(verifier, VECTORS["valid_jwt"], jwt_key=other) == "invalid_signature"


# --- size and structure -------------------------------------------------------------


async def test_oversized_token_is_rejected_before_any_decoding(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_decode(*args: object) -> object:
        raise AssertionError("decoded an oversized token")

    monkeypatch.setattr(_verification, "_b64decode", must_not_decode)
    monkeypatch.setattr(_verification, "_json_object", must_not_decode)
    huge = mint(payload(padding="x" * MAX_TOKEN_LENGTH))
    assert await reason_of(verifier, huge) == "token_too_large"
    # Not even a JWS: the size alone decides.
    assert await reason_of(verifier, "\x00" * (MAX_TOKEN_LENGTH + 1)) == "token_too_large"


async def test_token_one_character_over_the_cap_is_too_large(verifier: TokenVerifier) -> None:
    token = VECTORS["valid_jwt"]
    token = token[: token.rindex(".")] + "." + "A" * (MAX_TOKEN_LENGTH - token.rindex("."))
    assert len(token) == MAX_TOKEN_LENGTH + 1
    assert await reason_of(verifier, token) == "token_too_large"


async def test_valid_token_just_under_the_cap_verifies(verifier: TokenVerifier) -> None:
    base = len(mint(payload(padding="")))
    token = mint(payload(padding="x" * ((MAX_TOKEN_LENGTH - base) * 3 // 4 - 2)))
    assert MAX_TOKEN_LENGTH - 8 < len(token) <= MAX_TOKEN_LENGTH
    assert (await verifier.verify(token)).raw["padding"]


RS256 = b64json({"alg": "RS256", "kid": KID})


def _raw(header: str, body: str) -> str:
    return f"{header}.{body}.{b64url(b'signature')}"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("abc", id="one part"),
        pytest.param("a.b", id="two parts"),
        pytest.param("a.b.c.d", id="four parts"),
        pytest.param(VECTORS["valid_jwt"] + ".", id="trailing dot"),
        pytest.param("..", id="empty parts"),
        pytest.param(_raw(RS256, "!!!!"), id="payload not base64"),
        pytest.param(_raw(b64url(b"not json"), b64json({})), id="header not json"),
        pytest.param(_raw(b64json([1]), b64json({})), id="header not an object"),
        pytest.param(_raw(RS256, b64json("s")), id="payload not an object"),
        pytest.param(_raw(RS256, b64url(b'{"exp": NaN}')), id="NaN"),
        pytest.param(_raw(RS256, b64url(b"[" * 3000)), id="deeply nested"),
        pytest.param(_raw(RS256, b64url(b"\xff\xfe")), id="not utf-8"),
        pytest.param(VECTORS["valid_jwt"] + "=", id="padded signature"),
        pytest.param(VECTORS["valid_jwt"].replace("-", "+").replace("_", "/"), id="plain base64"),
        pytest.param(VECTORS["valid_jwt"][:-1] + "é", id="non-ascii"),
    ],
)
async def test_malformed_tokens_are_rejected(verifier: TokenVerifier, token: str) -> None:
    assert await reason_of(verifier, token) == "token_malformed"


async def test_non_canonical_base64_signature_is_malformed(verifier: TokenVerifier) -> None:
    # The last character of a 256-byte signature carries 4 unused bits; setting them would
    # decode to the same bytes, so accepting it would make tokens malleable.
    token = VECTORS["valid_jwt"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    assert last & 0b1111 == 0
    assert await reason_of(verifier, token[:-1] + alphabet[last | 1]) == "token_malformed"


async def test_non_string_token_is_malformed(verifier: TokenVerifier) -> None:
    assert await reason_of(verifier, VECTORS["valid_jwt"].encode()) == "token_malformed"  # type: ignore[arg-type]


# --- algorithm and header -----------------------------------------------------------


def _signing_input(header: dict[str, Any]) -> str:
    return f"{b64json(header)}.{b64json(payload())}"


def _alg_none() -> str:
    return _signing_input({"alg": "none", "kid": KID}) + "."


def _hs256_with_public_key() -> str:
    # The classic confusion attack: HMAC keyed with the public key the verifier holds.
    signing_input = _signing_input({"alg": "HS256", "kid": KID, "typ": "JWT"})
    mac = hmac.new(PUBLIC_KEY_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _pyjwt(alg: str, key: object) -> str:
    return jwt.encode(payload(), key, algorithm=alg, headers={"kid": KID})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(_alg_none, id="none"),
        pytest.param(_hs256_with_public_key, id="HS256 keyed with the public key"),
        pytest.param(lambda: _pyjwt("RS512", PRIVATE_KEY), id="RS512"),
        pytest.param(lambda: _pyjwt("PS256", PRIVATE_KEY), id="PS256"),
        pytest.param(lambda: _pyjwt("ES256", ec.generate_private_key(ec.SECP256R1())), id="ES256"),
        pytest.param(lambda: mint(header={"alg": "rs256"}), id="lowercase rs256"),
        pytest.param(lambda: mint(header={"alg": None}), id="no alg"),
        pytest.param(lambda: mint(header={"alg": ["RS256"]}), id="alg list"),
    ],
)
@pytest.mark.parametrize("with_jwt_key", [False, True], ids=["jwks", "jwt_key"])
async def test_algorithms_other_than_rs256_are_refused(
    verifier: TokenVerifier, jwks: FakeJwks, make_token: Any, with_jwt_key: bool
) -> None:
    jwt_key = PUBLIC_KEY_PEM if with_jwt_key else None
    assert await reason_of(verifier, make_token(), jwt_key=jwt_key) == "unsupported_algorithm"
    assert jwks.calls == 0


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "b64"])
async def test_critical_header_parameters_are_refused(
    verifier: TokenVerifier, crit: object
) -> None:
    token = mint(header={"crit": crit, "b64": False})
    assert await reason_of(verifier, token) == "unsupported_critical_header"


async def test_token_without_kid_is_unknown_and_fetches_nothing(
    verifier: TokenVerifier, jwks: FakeJwks
) -> None:
    assert await reason_of(verifier, mint(kid=None)) == "unknown_kid"
    assert jwks.calls == 0


# --- signature ----------------------------------------------------------------------


async def test_tampered_payload_fails_the_signature(verifier: TokenVerifier) -> None:
    header, _, signature = mint().split(".")
    forged = b64json(payload(sub="user_attacker"))
    assert await reason_of(verifier, f"{header}.{forged}.{signature}") == "invalid_signature"


async def test_tampered_header_fails_the_signature(verifier: TokenVerifier) -> None:
    _, body, signature = mint().split(".")
    header = b64json({"alg": "RS256", "kid": KID, "typ": "JWT", "x": 1})
    assert await reason_of(verifier, f"{header}.{body}.{signature}") == "invalid_signature"


async def test_token_signed_by_another_key_fails_the_signature(verifier: TokenVerifier) -> None:
    assert await reason_of(verifier, mint(key=OTHER_KEY)) == "invalid_signature"


async def test_truncated_signature_fails_the_signature(verifier: TokenVerifier) -> None:
    header, body, signature = mint().split(".")
    short = b64url(base64.urlsafe_b64decode(signature + "==")[:-1])
    assert await reason_of(verifier, f"{header}.{body}.{short}") == "invalid_signature"


async def test_signature_is_checked_before_claims(verifier: TokenVerifier) -> None:
    header, _, signature = mint().split(".")
    no_claims = b64json({})
    assert await reason_of(verifier, f"{header}.{no_claims}.{signature}") == "invalid_signature"


async def test_messages_never_contain_the_token(verifier: TokenVerifier) -> None:
    token = VECTORS["invalid_signature_jwt"]
    with pytest.raises(TokenVerificationError) as info:
        await verifier.verify(token)
    for part in token.split("."):
        assert part not in str(info.value)


async def test_claims_payload_decodes_like_json(verifier: TokenVerifier) -> None:
    body = VECTORS["valid_jwt"].split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(body + "=="))
    assert (await verifier.verify(VECTORS["valid_jwt"])).raw == decoded
