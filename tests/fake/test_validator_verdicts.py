"""The response validator's verdicts, one way of breaking the spec at a time.

The suite relies on this validator to prove the fake faithful, so it must itself say
no to each kind of wrong answer (and yes to a right one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clerk_sessions.testing import take_response_violations
from clerk_sessions.testing._validation import ResponseValidator, resolve_validation_source
from tests.conftest import OPENAPI_DIR
from tests.core._support import session_json

SESSION = json.dumps(session_json()).encode()
ERRORS = json.dumps({"errors": [{"code": "x", "message": "m", "long_message": "l"}]}).encode()


@pytest.fixture
def validator() -> Iterator[ResponseValidator]:
    yield ResponseValidator(OPENAPI_DIR)
    # The verdicts below are deliberate violations: keep them out of the suite's registry.
    take_response_violations()


@pytest.mark.parametrize(
    ("method", "template", "status", "content_type", "body", "problem"),
    [
        ("GET", "/sessions/{session_id}", 200, "application/json", SESSION, None),
        ("GET", "/sessions/{session_id}", 404, "application/json", ERRORS, None),
        ("GET", "/nowhere", 200, "application/json", SESSION, "does not have"),
        ("GET", "/nowhere", 404, "application/json", ERRORS, None),
        ("GET", "/sessions/{session_id}", 418, "application/json", ERRORS, "not documented"),
        ("GET", "/sessions/{session_id}", 200, "text/html", b"<html>", "content type"),
        ("GET", "/sessions/{session_id}", 200, "application/json", b"{oops", "not JSON"),
        ("GET", "/sessions/{session_id}", 200, "application/json", b'{"id": 1}', "id"),
    ],
)
def test_each_kind_of_wrong_answer_is_a_violation(
    validator: ResponseValidator,
    method: str,
    template: str,
    status: int,
    content_type: str,
    body: bytes,
    problem: str | None,
) -> None:
    violation = validator.check(
        api_version="2026-05-12",
        method=method,
        raw_path="/v1/x",
        template=template,
        status=status,
        content_type=content_type,
        body=body,
    )
    if problem is None:
        assert violation is None
    else:
        assert violation is not None
        assert any(problem in text for text in violation.problems), violation.problems


def test_an_injected_server_error_must_still_carry_clerk_error_json(
    validator: ResponseValidator,
) -> None:
    common = {
        "api_version": None,
        "method": "GET",
        "raw_path": "/v1/sessions/x",
        "template": "/sessions/{session_id}",
        "status": 503,
        "content_type": "application/json",
        "injected": True,
    }
    assert validator.check(body=ERRORS, **common) is None  # type: ignore[arg-type]
    assert validator.check(body=b'{"no": "errors"}', **common) is not None  # type: ignore[arg-type]


def test_versions_pick_the_oldest_spec_at_or_after_them(validator: ResponseValidator) -> None:
    assert validator.spec_for("2025-01-01").version == "2025-03-12"
    assert validator.spec_for("2025-11-10").version == "2026-05-12"
    assert validator.spec_for("2099-01-01").version == "2026-05-12"
    assert validator.spec_for("not-a-date").version == "2026-05-12"


def test_validation_asked_for_without_a_spec_location_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLERK_SESSIONS_FAKE_VALIDATE", raising=False)
    with pytest.raises(ValueError, match="CLERK_SESSIONS_FAKE_VALIDATE"):
        resolve_validation_source(True)
    assert resolve_validation_source(None) is None
    assert resolve_validation_source(False) is None


def test_a_folder_without_a_spec_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.yml").write_text("just: notes\n")
    with pytest.raises(ValueError, match="no OpenAPI spec"):
        ResponseValidator(tmp_path)


def test_the_fakes_key_reads_back_only_tokens_it_signed() -> None:
    from clerk_sessions.testing._keys import SigningKey

    mine, other = SigningKey("ins_mine"), SigningKey("ins_other")
    token = mine.sign({"sid": "sess_1", "exp": 1})  # long expired: expiry is not checked

    assert mine.decode(token) == {"sid": "sess_1", "exp": 1}
    assert mine.decode(other.sign({"sid": "sess_1"})) is None  # another kid
    forged = SigningKey("ins_mine")  # same kid, different key pair
    assert mine.decode(forged.sign({"sid": "sess_1"})) is None
    assert mine.decode("not.a.token") is None
