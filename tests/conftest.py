"""Suite-wide fixtures: every async test runs on both asyncio and trio."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# shared/ lies beside the checkout, both here and in CI; CLERK_SHARED_DIR overrides.
SHARED_DIR = Path(os.environ.get("CLERK_SHARED_DIR", REPO_ROOT.parent / "shared"))
OPENAPI_DIR = SHARED_DIR / "clerk-openapi"
FIXTURES_DIR = SHARED_DIR / "clerk-fixtures"


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]
