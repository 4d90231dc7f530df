"""The store-independent parts of the job interface: store URLs, outcome encoding, and
the models a job reports with."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from clerk_sessions.jobs._store import (
    JobDataLost,
    JobStoreError,
    outcome_from_json,
    outcome_to_json,
)
from clerk_sessions.jobs._store_url import parse_store_url
from clerk_sessions.models import CONNECTION_ERROR_CODE, ItemOutcome, JobStatus


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/lib/app/revoke.db", ("sqlite", "/var/lib/app/revoke.db")),
        ("sqlite:////var/lib/app/revoke.db", ("sqlite", "/var/lib/app/revoke.db")),
        ("SQLITE:///tmp/j.db", ("sqlite", "/tmp/j.db")),
        ("jobs.db", ("sqlite", "jobs.db")),
        ("/abs/jobs.db", ("sqlite", "/abs/jobs.db")),
        (Path("rel/jobs.db"), ("sqlite", "rel/jobs.db")),
        ("redis://127.0.0.1:6379/0", ("redis", "redis://127.0.0.1:6379/0")),
        ("rediss://h:6380", ("redis", "rediss://h:6380")),
        ("unix:///run/redis.sock", ("redis", "unix:///run/redis.sock")),
    ],
)
def test_store_urls_name_their_store(url: str, expected: tuple[str, str]) -> None:
    assert parse_store_url(url) == expected


@pytest.mark.parametrize(
    "url", ["", "sqlite://", "sqlite:///", "sqlite://host/jobs.db", "postgres://h/db"]
)
def test_unusable_store_urls_are_value_errors(url: str) -> None:
    with pytest.raises(ValueError, match="store"):
        parse_store_url(url)


def test_a_non_string_store_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="job store"):
        parse_store_url(b"jobs.db")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "outcome",
    [
        ItemOutcome(ok=True),
        ItemOutcome(ok=True, sessions_revoked=3),
        ItemOutcome(ok=False, status_code=404, error_code="resource_not_found", message="m"),
        ItemOutcome(ok=False, error_code=CONNECTION_ERROR_CODE, message="reset"),
        ItemOutcome(ok=False, status_code=200, error_code="x", message="é\n", sessions_revoked=1),
    ],
)
def test_outcomes_survive_their_json_encoding(outcome: ItemOutcome) -> None:
    text = outcome_to_json(outcome)
    assert outcome_from_json(text) == outcome
    assert outcome_from_json(text.encode()) == outcome


@pytest.mark.parametrize(
    ("outcome", "retryable"),
    [
        (ItemOutcome(ok=True), False),
        (ItemOutcome(ok=False, status_code=429), True),
        (ItemOutcome(ok=False, status_code=500), True),
        (ItemOutcome(ok=False, status_code=503), True),
        (ItemOutcome(ok=False, status_code=404), False),
        (ItemOutcome(ok=False, status_code=400), False),
        (ItemOutcome(ok=False, error_code=CONNECTION_ERROR_CODE), True),
        (ItemOutcome(ok=False, error_code="invalid_id"), False),
    ],
)
def test_only_429_5xx_and_no_answer_are_retryable(outcome: ItemOutcome, retryable: bool) -> None:
    assert outcome.retryable is retryable


def test_job_status_derives_pending_and_done() -> None:
    running = JobStatus(name="j", total=10, revoked=6, failed=1)
    assert (running.pending, running.done) == (3, False)
    finished = JobStatus(name="j", total=10, revoked=9, failed=1)
    assert (finished.pending, finished.done) == (0, True)
    assert JobStatus(name="empty", total=0, revoked=0, failed=0).done


def test_a_stores_lost_error_survives_pickle_with_its_count() -> None:
    lost = JobDataLost("SQLite job store '/x': the file was deleted", unaccounted=12)
    for copied in (pickle.loads(pickle.dumps(lost)), copy.copy(lost)):
        assert isinstance(copied, JobStoreError)
        assert (str(copied), copied.unaccounted) == (str(lost), 12)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://admin:hunter2@db/x", "unknown job store 'postgres://admin:***@db/x'"),
        ("ftp://h/x?password=hunter2", "unknown job store 'ftp://h/x?password=***'"),
    ],
)
def test_an_unusable_store_url_is_named_without_its_password(url: str, shown: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_store_url(url)
    assert shown in str(caught.value)
    assert "hunter2" not in str(caught.value)
