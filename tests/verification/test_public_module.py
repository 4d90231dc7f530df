"""``clerk_sessions.verification``: the reason codes, the unavailable set, the PEM loader,
and verification against a PEM key without a client."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from clerk_sessions import verification
from clerk_sessions.errors import TokenVerificationError
from clerk_sessions.verification import UNAVAILABLE_REASONS, Reason, load_pem, verify_token

from .conftest import OTHER_KEY, PUBLIC_KEY_PEM, mint, payload, public_pem

pytestmark = pytest.mark.anyio

CODES = {
    "token_malformed",
    "token_too_large",
    "unsupported_algorithm",
    "unknown_kid",
    "invalid_signature",
    "token_expired",
    "token_not_active_yet",
    "token_iat_in_future",
    "missing_claim",
    "invalid_authorized_party",
    "unsupported_critical_header",
    "jwks_unavailable",
    "invalid_key",
    "session_pending",
    "missing_token",
}


def test_every_code_is_a_reason_named_after_it() -> None:
    assert {reason.value for reason in Reason} == CODES
    for reason in Reason:
        assert reason.name == reason.value.upper()


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_a_reason_is_its_code_as_a_string(reason: Reason) -> None:
    code = reason.value
    assert isinstance(reason, str)
    assert reason == code
    assert Reason(code) is reason
    assert str(reason) == f"{reason}" == f"{reason:>1}" == code
    assert json.dumps({"reason": reason}) == json.dumps({"reason": code})
    assert hash(reason) == hash(code)


def test_the_unavailable_reasons_are_the_server_side_ones() -> None:
    assert {Reason.JWKS_UNAVAILABLE, Reason.INVALID_KEY} == UNAVAILABLE_REASONS
    # A code read back from JSON or a log is a plain string, and still matches.
    assert "jwks_unavailable" in UNAVAILABLE_REASONS
    assert "token_expired" not in UNAVAILABLE_REASONS


def test_the_module_exports_exactly_its_public_names() -> None:
    assert sorted(verification.__all__) == [
        "MAX_TOKEN_LENGTH",
        "Reason",
        "UNAVAILABLE_REASONS",
        "load_pem",
        "verify_token",
    ]
    for name in verification.__all__:
        assert getattr(verification, name).__doc__ or name.isupper()


def test_load_pem_reads_a_key_mangled_by_an_environment_variable() -> None:
    flattened = PUBLIC_KEY_PEM.strip().replace("\n", "\\n")
    key = load_pem(flattened)
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.public_numbers() == load_pem(PUBLIC_KEY_PEM).public_numbers()


@pytest.mark.parametrize("jwt_key", ["", "not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n"])
def test_load_pem_refuses_what_is_not_a_key_as_invalid_key(jwt_key: str) -> None:
    with pytest.raises(TokenVerificationError) as info:
        load_pem(jwt_key)
    assert info.value.reason is Reason.INVALID_KEY


def test_load_pem_refuses_a_non_string_with_a_type_error() -> None:
    with pytest.raises(TypeError, match="jwt_key must be a PEM string, got bytes"):
        load_pem(PUBLIC_KEY_PEM.encode())  # type: ignore[arg-type]


def current() -> str:
    """A token valid now: verify_token checks the time claims against the wall clock."""
    now = int(time.time())
    return mint(payload(iat=now, nbf=now - 10, exp=now + 60))


async def test_verify_token_checks_against_the_key_with_no_client() -> None:
    claims = await verify_token(current(), jwt_key=PUBLIC_KEY_PEM)
    assert claims.user_id == payload()["sub"]
    assert claims.session_id == payload()["sid"]


async def test_verify_token_reports_a_reason() -> None:
    now = int(time.time())
    with pytest.raises(TokenVerificationError) as info:
        await verify_token(mint(payload(exp=now - 60)), jwt_key=PUBLIC_KEY_PEM)
    assert info.value.reason is Reason.TOKEN_EXPIRED
    with pytest.raises(TokenVerificationError) as info:
        await verify_token(current(), jwt_key=public_pem(OTHER_KEY))
    assert info.value.reason is Reason.INVALID_SIGNATURE
    with pytest.raises(TokenVerificationError) as info:
        await verify_token(current(), jwt_key=PUBLIC_KEY_PEM, authorized_parties=["https://x.test"])
    assert info.value.reason is Reason.INVALID_AUTHORIZED_PARTY


async def test_verify_token_needs_a_key() -> None:
    with pytest.raises(TypeError, match="jwt_key must be a PEM string, got NoneType"):
        await verify_token(mint(), jwt_key=None)  # type: ignore[arg-type]
