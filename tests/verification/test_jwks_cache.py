"""The JWKS key cache: fetched on demand, refetched for an unknown kid, one fetch in
flight, a cooldown between fetches, and the last good keys kept when a fetch fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from clerk_sessions._errors import TokenVerificationError
from clerk_sessions._verification import TokenVerifier

from .conftest import (
    KID,
    OTHER_KEY,
    OTHER_KID,
    VECTORS,
    Clock,
    FakeJwks,
    jwk,
    mint,
)

pytestmark = pytest.mark.anyio

OLD_JWK = VECTORS["jwks"]["keys"][0]
NEW_JWK = jwk(OTHER_KEY, OTHER_KID)


async def reason_of(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenVerificationError) as info:
        await verifier.verify(token)
    return info.value.reason


async def test_keys_are_fetched_once_and_then_cached(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    for _ in range(3):
        await verifier.verify(mint())
        clock.t += 60
    assert jwks.calls == 1


async def test_rotated_key_is_fetched_when_a_token_names_it(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    await verifier.verify(mint())
    jwks.jwks["keys"] = [OLD_JWK, NEW_JWK]
    clock.t += 60
    assert await verifier.verify(mint(key=OTHER_KEY, kid=OTHER_KID))
    assert await verifier.verify(mint())
    assert jwks.calls == 2


async def test_concurrent_callers_share_one_fetch(verifier: TokenVerifier, jwks: FakeJwks) -> None:
    jwks.jwks["keys"] = [OLD_JWK, NEW_JWK]
    jwks.hold = True
    token = mint(key=OTHER_KEY, kid=OTHER_KID)
    results: list[str] = []

    async def verify() -> None:
        results.append((await verifier.verify(token)).session_id)

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(verify)
        await anyio.wait_all_tasks_blocked()
        jwks.release()
    assert jwks.calls == 1
    assert len(results) == 50


async def test_concurrent_callers_share_one_failed_fetch(
    verifier: TokenVerifier, jwks: FakeJwks
) -> None:
    jwks.hold = True
    jwks.error = OSError("connection refused")
    reasons: list[str] = []

    async def verify() -> None:
        reasons.append(await reason_of(verifier, mint()))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(verify)
        await anyio.wait_all_tasks_blocked()
        jwks.release()
    assert jwks.calls == 1
    assert reasons == ["jwks_unavailable"] * 50


async def test_forged_kids_within_the_cooldown_fail_without_fetching(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    await verifier.verify(mint())
    for i in range(20):
        clock.t += 0.05
        assert await reason_of(verifier, mint(kid=f"forged_{i}")) == "unknown_kid"
    assert jwks.calls == 1


async def test_unknown_kid_fetches_again_once_the_cooldown_has_passed(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    await verifier.verify(mint())
    clock.t += 1.9
    assert await reason_of(verifier, mint(kid="forged")) == "unknown_kid"
    assert jwks.calls == 1
    clock.t += 0.1
    assert await reason_of(verifier, mint(kid="forged")) == "unknown_kid"
    assert jwks.calls == 2


async def test_rotated_key_is_picked_up_after_the_cooldown(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    await verifier.verify(mint())
    jwks.jwks["keys"] = [OLD_JWK, NEW_JWK]
    rotated = mint(key=OTHER_KEY, kid=OTHER_KID)
    clock.t += 1
    assert await reason_of(verifier, rotated) == "unknown_kid"
    clock.t += 1
    assert await verifier.verify(rotated)


async def test_cooldown_is_configurable(
    make_verifier: Callable[..., TokenVerifier], jwks: FakeJwks, clock: Clock
) -> None:
    verifier = make_verifier(cooldown_s=30)
    await verifier.verify(mint())
    clock.t += 29
    assert await reason_of(verifier, mint(kid="forged")) == "unknown_kid"
    assert jwks.calls == 1
    clock.t += 1
    assert await reason_of(verifier, mint(kid="forged")) == "unknown_kid"
    assert jwks.calls == 2


async def test_zero_cooldown_still_fetches_once_per_unknown_kid(
    make_verifier: Callable[..., TokenVerifier], jwks: FakeJwks
) -> None:
    verifier = make_verifier(cooldown_s=0)
    assert await reason_of(verifier, mint(kid="forged")) == "unknown_kid"
    assert jwks.calls == 1


async def test_bad_signature_never_triggers_a_fetch(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    await verifier.verify(mint())
    for _ in range(5):
        clock.t += 30  # past the cooldown each time, within the cache's TTL in all
        assert await reason_of(verifier, mint(key=OTHER_KEY)) == "invalid_signature"
    assert jwks.calls == 1


async def test_failed_fetch_keeps_the_last_good_keys(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    await verifier.verify(mint())
    jwks.error = OSError("connection refused")
    clock.t += 60
    assert await reason_of(verifier, mint(kid="rotated")) == "unknown_kid"
    assert jwks.calls == 2
    assert await verifier.verify(mint())


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"keys": []}, id="no keys"),
        pytest.param({"error": "oops"}, id="no keys list"),
        pytest.param({"keys": [{"kty": "EC", "kid": "x", "crv": "P-256"}]}, id="no RSA key"),
        pytest.param([], id="not an object"),
    ],
)
async def test_unusable_jwks_document_keeps_the_last_good_keys(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock, document: Any
) -> None:
    await verifier.verify(mint())
    jwks.jwks = document
    clock.t += 60
    assert await reason_of(verifier, mint(kid="rotated")) == "unknown_kid"
    assert await verifier.verify(mint())


async def test_no_keys_at_all_is_jwks_unavailable_with_the_cause(
    verifier: TokenVerifier, jwks: FakeJwks
) -> None:
    failure = OSError("connection refused")
    jwks.error = failure
    with pytest.raises(TokenVerificationError) as info:
        await verifier.verify(mint())
    assert info.value.reason == "jwks_unavailable"
    assert info.value.__cause__ is failure


async def test_jwks_unavailable_recovers_after_the_cooldown(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    jwks.error = OSError("connection refused")
    assert await reason_of(verifier, mint()) == "jwks_unavailable"
    jwks.error = None
    assert await reason_of(verifier, mint()) == "jwks_unavailable"
    assert jwks.calls == 1
    clock.t += 2
    assert await verifier.verify(mint())
    assert jwks.calls == 2


async def test_successful_fetch_drops_retired_keys(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    await verifier.verify(mint())
    jwks.jwks["keys"] = [NEW_JWK]
    clock.t += 60
    assert await verifier.verify(mint(key=OTHER_KEY, kid=OTHER_KID))
    assert await reason_of(verifier, mint()) == "unknown_kid"


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({**OLD_JWK, "use": "enc"}, id="encryption key"),
        pytest.param({**OLD_JWK, "alg": "RS512"}, id="other algorithm"),
        pytest.param({**OLD_JWK, "n": "!!"}, id="bad modulus"),
        pytest.param({**OLD_JWK, "e": 65537}, id="exponent not base64"),
        pytest.param({**OLD_JWK, "n": "AQAB"}, id="tiny modulus"),
        pytest.param({k: v for k, v in OLD_JWK.items() if k != "kid"}, id="no kid"),
        pytest.param("not a jwk", id="not an object"),
    ],
)
async def test_unusable_jwk_entries_are_skipped(
    make_verifier: Callable[..., TokenVerifier], entry: Any
) -> None:
    verifier = make_verifier(FakeJwks(entry, jwk(OTHER_KEY, OTHER_KID)))
    assert await verifier.verify(mint(key=OTHER_KEY, kid=OTHER_KID))
    assert await reason_of(verifier, mint()) == "unknown_kid"


async def test_jwk_without_use_or_alg_is_accepted(
    make_verifier: Callable[..., TokenVerifier],
) -> None:
    bare = {k: v for k, v in OLD_JWK.items() if k not in ("use", "alg")}
    assert await make_verifier(FakeJwks(bare)).verify(mint())


async def test_cancelled_fetch_lets_a_waiting_caller_fetch_instead(
    make_verifier: Callable[..., TokenVerifier],
) -> None:
    fetches: list[str] = []

    async def fetch() -> dict[str, Any]:
        fetches.append("start")
        if len(fetches) == 1:
            await anyio.sleep_forever()
        return {"keys": [OLD_JWK]}

    verifier = make_verifier(fetch)
    results: list[str] = []

    async def waiter() -> None:
        results.append((await verifier.verify(mint())).user_id)

    async with anyio.create_task_group() as tg:
        first = anyio.CancelScope()

        async def initiator() -> None:
            with first:
                await verifier.verify(mint())

        tg.start_soon(initiator)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        first.cancel()
    assert len(fetches) == 2
    assert len(results) == 1


async def test_each_verifier_has_its_own_cache(
    make_verifier: Callable[..., TokenVerifier],
) -> None:
    # One verifier per client: another instance's JWKS must never vouch for a kid.
    first, second = FakeJwks(OLD_JWK), FakeJwks(jwk(OTHER_KEY, KID))
    assert await make_verifier(first).verify(mint())
    assert await reason_of(make_verifier(second), mint()) == "invalid_signature"
    assert await make_verifier(second).verify(mint(key=OTHER_KEY))
    assert (first.calls, second.calls) == (1, 2)


async def test_cached_keys_are_trusted_for_the_ttl_then_fetched_again(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    await verifier.verify(mint())
    clock.t += 299.9
    await verifier.verify(mint())
    assert jwks.calls == 1
    clock.t += 0.1
    await verifier.verify(mint())
    assert jwks.calls == 2
    await verifier.verify(mint())  # fresh again for another TTL
    assert jwks.calls == 2


async def test_the_ttl_is_a_setting(
    make_verifier: Callable[..., TokenVerifier], jwks: FakeJwks, clock: Clock
) -> None:
    verifier = make_verifier(ttl_s=30)
    await verifier.verify(mint())
    clock.t += 30
    await verifier.verify(mint())
    assert jwks.calls == 2


async def test_a_rotation_then_a_retirement_on_a_fake_clock(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock
) -> None:
    old_token, new_token = mint(), mint(key=OTHER_KEY, kid=OTHER_KID)
    await verifier.verify(old_token)
    # Clerk rotates: the new key is published beside the old one, and tokens signed with
    # it arrive at once; the unknown kid fetches the set again.
    clock.t += 10
    jwks.jwks["keys"] = [OLD_JWK, NEW_JWK]
    await verifier.verify(new_token)
    await verifier.verify(old_token)
    assert jwks.calls == 2
    # Clerk retires the old key: it keeps verifying only until the cached set expires.
    jwks.jwks["keys"] = [NEW_JWK]
    clock.t += 299
    await verifier.verify(old_token)
    clock.t += 1
    assert await reason_of(verifier, old_token) == "unknown_kid"
    await verifier.verify(new_token)
    assert jwks.calls == 3


async def test_a_failed_refresh_after_the_ttl_keeps_the_last_good_keys_and_logs(
    verifier: TokenVerifier, jwks: FakeJwks, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await verifier.verify(mint())
    jwks.error = OSError("connection refused")
    clock.t += 300
    with caplog.at_level("WARNING", logger="clerk_sessions"):
        await verifier.verify(mint())
    assert jwks.calls == 2
    (record,) = caplog.records
    assert record.getMessage() == (
        "could not refresh the JWKS (connection refused); the 1 keys fetched 300 s ago stay in use"
    )
    # No fetch per verification during the outage: at most one per cooldown.
    await verifier.verify(mint())
    assert jwks.calls == 2
    clock.t += 2
    await verifier.verify(mint())
    assert jwks.calls == 3
    # Once Clerk answers again the keys are fresh for a whole TTL.
    jwks.error = None
    clock.t += 2
    await verifier.verify(mint())
    assert jwks.calls == 4
    clock.t += 299
    await verifier.verify(mint())
    assert jwks.calls == 4


async def test_a_first_fetch_that_fails_is_logged(
    verifier: TokenVerifier, jwks: FakeJwks, caplog: pytest.LogCaptureFixture
) -> None:
    jwks.error = OSError("connection refused")
    with caplog.at_level("WARNING", logger="clerk_sessions"):
        assert await reason_of(verifier, mint()) == "jwks_unavailable"
    assert [r.getMessage() for r in caplog.records] == [
        "could not fetch the JWKS: connection refused"
    ]
