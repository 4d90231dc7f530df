"""Schemathesis against the in-process fake, for both spec versions.

Every operation of each spec (with the fake's documented deviations, see
``clerk_sessions.testing.KNOWN_DEVIATIONS``) gets positive and negative examples,
bounded and derandomized, and every default check must pass: status code, content
type and response schema conformance, negative data rejected, auth not ignored.
"""

from __future__ import annotations

from typing import Any

import schemathesis
import yaml  # type: ignore[import-untyped, unused-ignore]

from clerk_sessions.testing import FakeClerk, spec_with_known_deviations
from tests.conftest import OPENAPI_DIR

KEY = "sk_test_schemathesis"
VERSIONS = ("2025-03-12", "2026-05-12")


def load_schema(version: str) -> Any:
    from schemathesis.config import SchemathesisConfig

    with (OPENAPI_DIR / f"bapi-sessions-{version}.yml").open(encoding="utf-8") as handle:
        raw = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    config = SchemathesisConfig.from_dict(
        {
            "seed": 1,
            "generation": {"max-examples": 30, "deterministic": True, "mode": "all"},
            "phases": {"stateful": {"enabled": False}},
            "auth": {"openapi": {"bearerAuth": {"bearer": KEY}}},
            "headers": {"Clerk-API-Version": version},
        }
    )
    schema = schemathesis.openapi.from_dict(spec_with_known_deviations(raw), config=config)
    fake = FakeClerk(secret_key=KEY)
    fake.add_session(user_id="user_schemathesis")
    schema.app = fake.app
    return schema


old_schema = load_schema("2025-03-12")
new_schema = load_schema("2026-05-12")


@old_schema.parametrize()
def test_fake_conforms_to_the_2025_03_12_spec(case: Any) -> None:
    case.call_and_validate()


@new_schema.parametrize()
def test_fake_conforms_to_the_2026_05_12_spec(case: Any) -> None:
    case.call_and_validate()
