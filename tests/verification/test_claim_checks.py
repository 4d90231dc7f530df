"""The claim checks after the signature: time claims with leeway, azp, sub and sid."""

from __future__ import annotations

from typing import Any

import pytest

from clerk_sessions._errors import TokenVerificationError
from clerk_sessions._verification import TokenVerifier

from .conftest import FROZEN_NOW, Clock, mint, payload

pytestmark = pytest.mark.anyio

LEEWAY = 5


async def reason_of(verifier: TokenVerifier, token: str, **kwargs: Any) -> str:
    with pytest.raises(TokenVerificationError) as info:
        await verifier.verify(token, **kwargs)
    return info.value.reason


# Each row: the claims, the clock relative to FROZEN_NOW for "just outside" the leeway
# and for "just inside", and the reason outside. Only the one claim under test is near
# its limit; the others are comfortably valid.
TIME_CASES = [
    pytest.param(
        {"exp": FROZEN_NOW, "nbf": FROZEN_NOW - 100, "iat": FROZEN_NOW - 100},
        LEEWAY + 1,
        LEEWAY - 1,
        "token_expired",
        id="exp",
    ),
    pytest.param(
        {"exp": FROZEN_NOW + 100, "nbf": FROZEN_NOW, "iat": FROZEN_NOW - 100},
        -(LEEWAY + 1),
        -(LEEWAY - 1),
        "token_not_active_yet",
        id="nbf",
    ),
    pytest.param(
        {"exp": FROZEN_NOW + 100, "nbf": FROZEN_NOW - 100, "iat": FROZEN_NOW},
        -(LEEWAY + 1),
        -(LEEWAY - 1),
        "token_iat_in_future",
        id="iat",
    ),
]


@pytest.mark.parametrize(("claims", "outside", "inside", "reason"), TIME_CASES)
async def test_time_claim_one_second_past_the_leeway_is_rejected(
    verifier: TokenVerifier,
    now: Clock,
    claims: dict[str, int],
    outside: int,
    inside: int,
    reason: str,
) -> None:
    now.t = FROZEN_NOW + outside
    assert await reason_of(verifier, mint(payload(**claims)), leeway_s=LEEWAY) == reason


@pytest.mark.parametrize(("claims", "outside", "inside", "reason"), TIME_CASES)
async def test_time_claim_one_second_within_the_leeway_is_accepted(
    verifier: TokenVerifier,
    now: Clock,
    claims: dict[str, int],
    outside: int,
    inside: int,
    reason: str,
) -> None:
    now.t = FROZEN_NOW + inside
    assert await verifier.verify(mint(payload(**claims)), leeway_s=LEEWAY)


async def test_default_leeway_is_five_seconds(verifier: TokenVerifier, now: Clock) -> None:
    token = mint(payload(exp=FROZEN_NOW))
    now.t = FROZEN_NOW + 5
    assert await verifier.verify(token)
    now.t = FROZEN_NOW + 5.001
    assert await reason_of(verifier, token) == "token_expired"


async def test_zero_leeway_is_exact(verifier: TokenVerifier, now: Clock) -> None:
    token = mint(payload(exp=FROZEN_NOW))
    assert await verifier.verify(token, leeway_s=0)
    now.t = FROZEN_NOW + 0.5
    assert await reason_of(verifier, token, leeway_s=0) == "token_expired"


@pytest.mark.parametrize("leeway", [-1, float("nan")])
async def test_negative_or_nan_leeway_is_a_caller_error(
    verifier: TokenVerifier, leeway: float
) -> None:
    with pytest.raises(ValueError, match="leeway_s"):
        await verifier.verify(mint(), leeway_s=leeway)


async def test_nbf_and_iat_are_optional(verifier: TokenVerifier) -> None:
    claims = await verifier.verify(mint(payload(nbf=None, iat=None)))
    assert claims.not_before is None
    assert claims.issued_at is None


async def test_fractional_time_claims_are_compared_exactly(
    verifier: TokenVerifier, now: Clock
) -> None:
    token = mint(payload(exp=FROZEN_NOW + 0.5))
    now.t = FROZEN_NOW + 5.4
    assert (await verifier.verify(token)).expires_at == FROZEN_NOW
    now.t = FROZEN_NOW + 5.6
    assert await reason_of(verifier, token) == "token_expired"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": None}, id="no exp"),
        pytest.param({"exp": str(FROZEN_NOW + 60)}, id="exp as a string"),
        pytest.param({"exp": True}, id="exp as a bool"),
        pytest.param({"exp": 10**30}, id="exp out of range"),
        pytest.param({"nbf": "yesterday"}, id="nbf not a number"),
        pytest.param({"iat": [1]}, id="iat not a number"),
        pytest.param({"sub": None}, id="no sub"),
        pytest.param({"sid": None}, id="no sid"),
        pytest.param({"sub": ""}, id="empty sub"),
        pytest.param({"sid": 42}, id="sid not a string"),
    ],
)
async def test_missing_or_mistyped_required_claims_are_rejected(
    verifier: TokenVerifier, claims: dict[str, Any]
) -> None:
    assert await reason_of(verifier, mint(payload(**claims))) == "missing_claim"


async def test_expiry_is_checked_before_sub_and_sid(verifier: TokenVerifier) -> None:
    token = mint(payload(exp=FROZEN_NOW - 60, sub=None))
    assert await reason_of(verifier, token) == "token_expired"


# --- azp ----------------------------------------------------------------------------

AZP = payload()["azp"]


async def test_azp_among_the_authorized_parties_is_accepted(verifier: TokenVerifier) -> None:
    claims = await verifier.verify(mint(), authorized_parties=["https://other.example", AZP])
    assert claims.authorized_party == AZP


async def test_foreign_azp_is_rejected(verifier: TokenVerifier) -> None:
    token = mint(payload(azp="https://evil.example"))
    assert await reason_of(verifier, token, authorized_parties=[AZP]) == (
        "invalid_authorized_party"
    )


async def test_missing_azp_is_rejected_when_parties_are_given(verifier: TokenVerifier) -> None:
    token = mint(payload(azp=None))
    assert await reason_of(verifier, token, authorized_parties={AZP}) == (
        "invalid_authorized_party"
    )


async def test_missing_azp_is_accepted_when_no_parties_are_given(
    verifier: TokenVerifier,
) -> None:
    token = mint(payload(azp=None))
    assert (await verifier.verify(token)).authorized_party is None
    assert (await verifier.verify(token, authorized_parties=())).authorized_party is None


async def test_azp_is_matched_exactly_not_by_prefix(verifier: TokenVerifier) -> None:
    token = mint(payload(azp=AZP + ".evil.example"))
    assert await reason_of(verifier, token, authorized_parties=[AZP]) == (
        "invalid_authorized_party"
    )


async def test_a_single_string_of_parties_is_a_caller_error(verifier: TokenVerifier) -> None:
    # "in" on a str would match substrings: "https://a" in "https://a.evil" is True.
    with pytest.raises(TypeError, match="authorized_parties"):
        await verifier.verify(mint(), authorized_parties=AZP)


# --- session status -----------------------------------------------------------------


async def test_pending_session_is_rejected_by_default(verifier: TokenVerifier) -> None:
    assert await reason_of(verifier, mint(payload(sts="pending"))) == "session_pending"


async def test_pending_session_is_accepted_when_asked(verifier: TokenVerifier) -> None:
    claims = await verifier.verify(mint(payload(sts="pending")), accept_pending=True)
    assert claims.session_status == "pending"


async def test_active_session_status_is_reported(verifier: TokenVerifier) -> None:
    assert (await verifier.verify(mint(payload(sts="active")))).session_status == "active"
