"""The opt-in response validator and its process-wide registry of violations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openapi_schema_validator  # noqa: F401  # pyright: ignore[reportUnusedImport]  # a missing validator fails
import pytest

from clerk_sessions.testing import (
    KNOWN_DEVIATIONS,
    FakeClerk,
    response_violations,
    spec_with_known_deviations,
    take_response_violations,
)
from clerk_sessions.testing._validation import ResponseValidator
from tests.conftest import OPENAPI_DIR, REPO_ROOT


@pytest.fixture
def validator() -> ResponseValidator:
    return ResponseValidator(OPENAPI_DIR)


def check(validator: ResponseValidator, body: object, **overrides: object) -> object:
    arguments: dict[str, object] = {
        "api_version": "2026-05-12",
        "method": "GET",
        "raw_path": "/v1/sessions/sess_1",
        "template": "/sessions/{session_id}",
        "status": 200,
        "content_type": "application/json",
        "body": json.dumps(body).encode(),
    }
    arguments.update(overrides)
    return validator.check(**arguments)  # type: ignore[arg-type]


def test_a_session_missing_a_required_field_is_a_violation(
    fake: FakeClerk, validator: ResponseValidator
) -> None:
    session = fake.add_session()
    del session["expire_at"]
    violation = check(validator, session)
    taken = take_response_violations()
    assert taken == [violation]
    assert "'expire_at' is a required property" in str(violation)


def test_an_extra_field_breaks_the_session_schema(
    fake: FakeClerk, validator: ResponseValidator
) -> None:
    session = fake.add_session()
    violation = check(validator, {**session, "surprise": 1})
    take_response_violations()
    assert violation is not None


def test_an_undocumented_status_is_a_violation(validator: ResponseValidator) -> None:
    body = {"errors": [{"message": "m", "long_message": "l", "code": "c"}]}
    violation = check(validator, body, status=418)
    take_response_violations()
    assert "418 not documented" in str(violation)


def test_the_spec_follows_the_requested_api_version(validator: ResponseValidator) -> None:
    assert validator.spec_for("2025-03-12").version == "2025-03-12"
    assert validator.spec_for("2025-11-10").version == "2026-05-12"
    assert validator.spec_for("2024-10-01").version == "2025-03-12"
    assert validator.spec_for(None).version == "2026-05-12"


def test_verify_is_validated_against_the_old_spec_only(validator: ResponseValidator) -> None:
    body = {"errors": [{"message": "m", "long_message": "l", "code": "c"}]}
    path = "/sessions/{session_id}/verify"
    assert check(validator, body, method="POST", template=path, status=410) is None
    old = check(validator, body, method="POST", template=path, status=418, api_version="2025-03-12")
    take_response_violations()
    assert old is not None


def test_paginated_page_is_a_documented_deviation(
    fake: FakeClerk, validator: ResponseValidator
) -> None:
    page = {"data": [fake.add_session()], "total_count": 1}
    assert check(validator, page, template="/sessions") is None
    assert "GetSessionList 200" in KNOWN_DEVIATIONS


def test_patched_spec_leaves_the_original_alone() -> None:
    spec = {"paths": {"/jwks": {"get": {"responses": {"200": {}}}}}}
    patched = spec_with_known_deviations(spec)
    assert set(patched["paths"]["/jwks"]["get"]["responses"]) == {"200", "401", "429"}
    assert set(spec["paths"]["/jwks"]["get"]["responses"]) == {"200"}


def test_every_fake_in_the_suite_validates(fake: FakeClerk) -> None:
    # tests/conftest.py sets CLERK_SESSIONS_FAKE_VALIDATE for the whole run.
    assert fake.validator is not None


def test_validation_can_be_turned_off() -> None:
    assert FakeClerk(validate_responses=False).validator is None


def test_registry_starts_empty_for_each_test() -> None:
    assert response_violations() == []


def run_pytest_against_a_broken_spec(
    tmp_path: Path, test_file: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``tests/fake/<test_file>`` in a subprocess, every fake validating
    against a broken spec (sessions need a field the fake never sends)."""
    import yaml

    spec = yaml.safe_load((OPENAPI_DIR / "bapi-sessions-2026-05-12.yml").read_text())
    spec["components"]["schemas"]["Session"]["required"].append("nickname")
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    (spec_dir / "broken.yml").write_text(yaml.safe_dump(spec))
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args),
            str(REPO_ROOT / "tests" / "fake" / test_file),
        ],
        cwd=REPO_ROOT,
        env={"CLERK_SESSIONS_FAKE_VALIDATE": str(spec_dir), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_violation_fails_the_test_run(tmp_path: Path) -> None:
    result = run_pytest_against_a_broken_spec(tmp_path, "_violating_check.py")
    assert result.returncode != 0, result.stdout
    assert "break the OpenAPI spec" in result.stdout
    assert "'nickname' is a required property" in result.stdout


@pytest.mark.parametrize("workers", [None, "1"], ids=["serial", "xdist"])
def test_a_violation_after_the_last_test_fails_the_test_run(
    tmp_path: Path, workers: str | None
) -> None:
    # The fake answers while a module fixture is torn down, after the last test's own
    # check. Under pytest-xdist (as nox runs the suite) that happens in a worker, whose
    # exit status xdist ignores: the worker must hand it to the controller.
    args = ("-n", workers) if workers else ("-p", "no:xdist")
    result = run_pytest_against_a_broken_spec(tmp_path, "_violating_teardown_check.py", *args)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "break the OpenAPI spec" in result.stdout
    assert "'nickname' is a required property" in result.stdout
