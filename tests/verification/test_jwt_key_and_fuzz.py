"""The ``jwt_key`` (PEM) path, and a fuzz of mutated tokens."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clerk_sessions import _verification
from clerk_sessions._errors import TokenVerificationError
from clerk_sessions._verification import TokenVerifier
from clerk_sessions.verification import Reason

from .conftest import OTHER_KEY, PUBLIC_KEY_PEM, VECTORS, Clock, mint, no_network, public_pem

pytestmark = pytest.mark.anyio


async def reason_of(verifier: TokenVerifier, token: str, **kwargs: Any) -> str:
    with pytest.raises(TokenVerificationError) as info:
        await verifier.verify(token, **kwargs)
    return info.value.reason


@pytest.fixture
def offline(now: Clock) -> TokenVerifier:
    """A verifier whose fetch_jwks fails the test if it is ever called."""
    return TokenVerifier(no_network, now=now)


def _pem_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


@pytest.mark.parametrize(
    "jwt_key",
    [
        pytest.param(PUBLIC_KEY_PEM, id="pem"),
        pytest.param(PUBLIC_KEY_PEM.replace("\n", "\\n"), id="escaped newlines"),
        pytest.param(PUBLIC_KEY_PEM.replace("\n", ""), id="one line"),
        pytest.param(_pem_body(PUBLIC_KEY_PEM), id="body only"),
        pytest.param(f"  {PUBLIC_KEY_PEM}\n\n", id="surrounding whitespace"),
    ],
)
async def test_jwt_key_forms_from_environment_variables_are_accepted(
    offline: TokenVerifier, jwt_key: str
) -> None:
    assert await offline.verify(mint(), jwt_key=jwt_key)


async def test_pkcs1_rsa_public_key_pem_is_accepted(offline: TokenVerifier) -> None:
    public = OTHER_KEY.public_key()
    pkcs1 = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    assert await offline.verify(mint(key=OTHER_KEY), jwt_key=pkcs1.decode())


def _private_pem() -> str:
    return VECTORS["private_key_pem"]  # type: ignore[no-any-return]


def _ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _short_rsa_pem() -> str:
    return public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))


@pytest.mark.parametrize(
    "jwt_key",
    [
        pytest.param("", id="empty"),
        pytest.param("not a key", id="garbage"),
        pytest.param(_private_pem(), id="private key"),
        pytest.param(_ec_pem(), id="EC key"),
        pytest.param(_short_rsa_pem(), id="1024-bit RSA"),
        pytest.param(
            "-----BEGIN PUBLIC KEY-----\nwr\u00e9ng\n-----END PUBLIC KEY-----", id="non-ascii"
        ),
    ],
)
async def test_unusable_jwt_key_is_an_invalid_key(offline: TokenVerifier, jwt_key: str) -> None:
    assert await reason_of(offline, mint(), jwt_key=jwt_key) == "invalid_key"


async def test_parsed_jwt_key_is_cached(
    offline: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    load_pem = _verification.load_pem

    def counting(jwt_key: str) -> Any:
        loads.append(jwt_key)
        return load_pem(jwt_key)

    monkeypatch.setattr(_verification, "load_pem", counting)
    for _ in range(5):
        await offline.verify(mint(), jwt_key=PUBLIC_KEY_PEM)
    await offline.verify(mint(key=OTHER_KEY), jwt_key=public_pem(OTHER_KEY))
    assert len(loads) == 2


# --- fuzz ---------------------------------------------------------------------------

VALID = VECTORS["valid_jwt"]


@st.composite
def mutated_tokens(draw: st.DrawFn) -> str:
    """The valid fixture token with a few random byte flips, truncations, insertions and
    deletions."""
    data = bytearray(VALID.encode())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        index = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[index:]
        elif kind == "insert":
            data.insert(index, draw(st.integers(0, 255)))
        elif data:
            del data[index]
    return data.decode("latin-1")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=mutated_tokens())
async def test_mutated_tokens_fail_cleanly_or_verify_identically(
    verifier: TokenVerifier, token: str
) -> None:
    expected = await verifier.verify(VALID)
    try:
        claims = await verifier.verify(token)
    except TokenVerificationError as exc:
        assert type(exc.reason) is Reason
    else:
        # base64url is checked for its canonical spelling, so nothing but the original
        # token can verify.
        assert claims == expected
        assert token == VALID


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
async def test_arbitrary_strings_fail_with_a_reason(offline: TokenVerifier, token: str) -> None:
    with pytest.raises(TokenVerificationError):
        await offline.verify(token, jwt_key=PUBLIC_KEY_PEM)


# --- without the jwt extra ----------------------------------------------------------


async def test_missing_crypto_dependency_names_the_extra(
    offline: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_verification, "_crypto", None)
    monkeypatch.setitem(sys.modules, "cryptography.exceptions", None)
    with pytest.raises(ImportError, match=r'pip install "clerk-sessions\[jwt\]"'):
        await offline.verify(mint(), jwt_key=PUBLIC_KEY_PEM)


def test_verification_module_imports_without_crypto() -> None:
    code = (
        "import sys\n"
        "for name in ('cryptography', 'jwt'):\n"
        "    sys.modules[name] = None\n"
        "import clerk_sessions._verification, clerk_sessions._claims\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
