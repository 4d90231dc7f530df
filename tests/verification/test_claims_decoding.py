"""Decoding v1 and v2 session-token claims into SessionClaims.

The v2 cases mirror the behaviour documented for Clerk's own parser
(clerk/javascript packages/shared/src/jwtPayloadParser.ts): a v2 token and the v1 token
it replaces decode to the same organization fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from clerk_sessions._claims import RequestState, SessionClaims, claims_from_payload
from clerk_sessions._verification import TokenVerifier

from .conftest import FROZEN_NOW, mint, payload

ORG_FIELDS = ("org_id", "org_role", "org_slug", "org_permissions")


def org_of(claims: SessionClaims) -> tuple[Any, ...]:
    return tuple(getattr(claims, name) for name in ORG_FIELDS)


def v2(**claims: Any) -> SessionClaims:
    return claims_from_payload(payload(v=2, **claims))


def test_v1_organization_claims_are_read_from_the_top_level() -> None:
    claims = claims_from_payload(
        payload(
            org_id="org_1",
            org_role="org:admin",
            org_slug="acme",
            org_permissions=["org:invoices:read", "org:invoices:manage"],
        )
    )
    assert claims.version == 1
    assert org_of(claims) == (
        "org_1",
        "org:admin",
        "acme",
        ("org:invoices:read", "org:invoices:manage"),
    )


def test_v2_token_decodes_like_the_v1_token_it_replaces() -> None:
    as_v2 = v2(
        fea="o:impersonation",
        o={"id": "org_1", "rol": "admin", "slg": "acme", "per": "read,manage", "fpm": "3"},
    )
    as_v1 = claims_from_payload(
        payload(
            org_id="org_1",
            org_role="org:admin",
            org_slug="acme",
            org_permissions=["org:impersonation:read", "org:impersonation:manage"],
        )
    )
    assert as_v2.version == 2
    assert org_of(as_v2) == org_of(as_v1)


def test_v2_feature_masks_grant_permissions_by_bit() -> None:
    claims = v2(
        fea="o:impersonation,o:memberships",
        o={"id": "org_1", "rol": "admin", "per": "read,manage", "fpm": "1,3"},
    )
    assert sorted(claims.org_permissions) == [
        "org:impersonation:read",
        "org:memberships:manage",
        "org:memberships:read",
    ]


def test_v2_masks_align_with_organization_features_only() -> None:
    # User-scoped features have no mask; "ou" features are organization features too.
    claims = v2(
        fea="u:chat,o:reports,u:export,ou:billing,o:audit",
        o={"id": "org_1", "rol": "member", "per": "read,manage", "fpm": "2,1,0"},
    )
    assert claims.org_permissions == ("org:reports:manage", "org:billing:read")


def test_v2_masks_wider_than_53_bits_are_exact() -> None:
    permissions = [f"p{i}" for i in range(70)]
    claims = v2(
        fea="o:big",
        o={"id": "org_1", "rol": "admin", "per": ",".join(permissions), "fpm": str(2**69 | 1)},
    )
    assert claims.org_permissions == ("org:big:p0", "org:big:p69")


@pytest.mark.parametrize(
    "org",
    [
        pytest.param({"id": "org_1", "rol": "admin"}, id="no per or fpm"),
        pytest.param({"id": "org_1", "per": "read", "fpm": "x"}, id="mask not decimal"),
        pytest.param({"id": "org_1", "per": "read", "fpm": "-1"}, id="negative mask"),
        pytest.param({"id": "org_1", "per": 5, "fpm": "1"}, id="per not a string"),
    ],
)
def test_v2_unusable_permission_encodings_grant_nothing(org: dict[str, Any]) -> None:
    assert v2(fea="o:reports", o=org).org_permissions == ()


def test_v2_without_an_active_organization_has_no_org_fields() -> None:
    claims = v2(fea="u:impersonation,u:memberships")
    assert org_of(claims) == (None, None, None, ())
    assert claims.features == ("u:impersonation", "u:memberships")


def test_v2_feature_entry_without_a_scope_is_skipped() -> None:
    claims = v2(fea="reports,o:audit", o={"id": "org_1", "per": "read", "fpm": "1"})
    assert claims.org_permissions == ("org:audit:read",)


def test_features_plan_and_actor_are_decoded() -> None:
    claims = v2(fea="o:reports, u:chat", pla="u:free_user", act={"sub": "user_admin"})
    assert claims.features == ("o:reports", "u:chat")
    assert claims.plan == "u:free_user"
    assert claims.actor == {"sub": "user_admin"}


def test_v1_actor_is_decoded() -> None:
    claims = claims_from_payload(payload(act={"sub": "user_admin", "iss": "dashboard"}))
    assert claims.actor == {"sub": "user_admin", "iss": "dashboard"}


def test_optional_claims_of_the_wrong_type_are_treated_as_absent() -> None:
    claims = claims_from_payload(
        payload(sts=1, azp=[], iss=None, act="user", fea=3, pla={}, org_permissions="x")
    )
    assert claims.session_status is None
    assert claims.authorized_party is None
    assert claims.issuer is None
    assert claims.actor is None
    assert claims.features == ()
    assert claims.plan is None
    assert claims.org_permissions == ()


def test_unknown_version_decodes_as_v1() -> None:
    claims = claims_from_payload(payload(v=3, org_id="org_1"))
    assert claims.version == 1
    assert claims.org_id == "org_1"


def test_timestamps_have_utc_datetimes() -> None:
    claims = claims_from_payload(payload())
    assert claims.expires_at_dt == datetime.fromtimestamp(claims.expires_at, tz=UTC)
    assert claims.issued_at_dt is not None
    assert claims.issued_at_dt.tzinfo is UTC
    assert claims.not_before_dt == datetime.fromtimestamp(FROZEN_NOW - 10, tz=UTC)
    assert claims_from_payload(payload(iat=None)).issued_at_dt is None


def test_raw_keeps_custom_claims() -> None:
    claims = claims_from_payload(payload(metadata={"tier": "gold"}))
    assert claims.raw["metadata"] == {"tier": "gold"}


def test_claims_are_frozen_and_hashable_despite_raw_and_actor() -> None:
    claims = claims_from_payload(payload(act={"sub": "user_admin"}))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        claims.user_id = "someone else"  # type: ignore[misc]
    assert hash(claims) == hash(claims_from_payload(payload(act={"sub": "user_admin"})))
    assert "raw" not in repr(claims)


def test_request_state_repr_hides_the_token() -> None:
    state = RequestState(is_signed_in=False, reason="token_expired", token="secret.jwt.value")
    assert "secret.jwt.value" not in repr(state)


@pytest.mark.anyio
async def test_verified_v2_token_carries_all_fields(verifier: TokenVerifier) -> None:
    token = mint(
        payload(
            v=2,
            sts="active",
            fea="o:reports",
            pla="o:pro",
            act={"sub": "user_support"},
            o={"id": "org_9", "rol": "billing", "slg": "nine", "per": "read,manage", "fpm": "2"},
        )
    )
    claims = await verifier.verify(token)
    assert claims.version == 2
    assert claims.session_status == "active"
    assert org_of(claims) == ("org_9", "org:billing", "nine", ("org:reports:manage",))
    assert claims.features == ("o:reports",)
    assert claims.plan == "o:pro"
    assert claims.actor == {"sub": "user_support"}
