"""Logging: one DEBUG record per attempt, INFO per retry, ``debug_logger``,
``CLERK_SESSIONS_LOG``, and no secret in any record."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from clerk_sessions import AsyncClerk, BackoffStrategy, RetryConfig, _logging, errors
from clerk_sessions._http.transport import Transport
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.anyio

RETRIES = RetryConfig(backoff=BackoffStrategy(1, 5, 2.0, 10_000), max_attempts=3)


def scripted(*answers: httpx2.Response | Exception) -> httpx2.MockTransport:
    queue = list(answers)

    def handler(request: httpx2.Request) -> httpx2.Response:
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx2.MockTransport(handler)


SESSION = {
    "object": "session",
    "id": "sess_1",
    "user_id": "user_1",
    "client_id": "client_1",
    "status": "active",
    "last_active_at": 1,
    "expire_at": 2,
    "abandon_at": 3,
    "updated_at": 4,
    "created_at": 5,
}


def records_of(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "clerk_sessions" and r.levelno == level]


async def test_one_debug_record_per_attempt_and_one_info_record_per_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="clerk_sessions")
    transport = scripted(
        httpx2.ConnectError("refused"),
        httpx2.Response(503, json={"errors": [], "clerk_trace_id": "tr_503"}),
        httpx2.Response(200, json=SESSION, headers={"X-Clerk-Trace-Id": "tr_ok"}),
    )
    clerk = AsyncClerk("sk_test_x", transport=transport, retry_config=RETRIES)
    await clerk.sessions.get("sess_1")
    debug = records_of(caplog, logging.DEBUG)
    assert [(r.clerk_attempt, r.clerk_outcome, r.clerk_trace_id) for r in debug] == [  # type: ignore[attr-defined]
        (1, "ConnectError", None),
        (2, 503, "tr_503"),
        (3, 200, "tr_ok"),
    ]
    for record in debug:
        assert record.clerk_method == "GET"  # type: ignore[attr-defined]
        assert record.clerk_path == "/sessions/sess_1"  # type: ignore[attr-defined]
        assert record.clerk_elapsed_ms >= 0  # type: ignore[attr-defined]
    assert debug[2].getMessage().startswith("GET /sessions/sess_1 -> 200 in ")
    assert "attempt 3, trace id tr_ok" in debug[2].getMessage()
    info = records_of(caplog, logging.INFO)
    assert len(info) == 2
    assert all(r.getMessage().startswith("retrying in ") for r in info)


async def test_the_path_in_the_record_has_the_query(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="clerk_sessions")
    clerk = AsyncClerk("sk_test_x", transport=scripted(httpx2.Response(200, json=[])))
    await clerk.sessions.list(user_id="user_1", paginated=False)
    (record,) = records_of(caplog, logging.DEBUG)
    assert record.clerk_path == "/sessions?user_id=user_1&paginated=false"  # type: ignore[attr-defined]


async def test_an_error_answer_that_is_not_retried_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="clerk_sessions")
    clerk = AsyncClerk("sk_test_x", transport=scripted(httpx2.Response(404, json={"errors": []})))
    with pytest.raises(errors.NotFoundError):
        await clerk.sessions.get("sess_1")
    assert [r.clerk_outcome for r in records_of(caplog, logging.DEBUG)] == [404]  # type: ignore[attr-defined]
    assert records_of(caplog, logging.INFO) == []


async def test_the_debug_logger_gets_every_debug_record_even_with_the_sdk_logger_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="clerk_sessions")
    mine = logging.getLogger("app.clerk_requests")
    mine.setLevel(logging.DEBUG)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    mine.addHandler(handler)
    try:
        transport = scripted(httpx2.Response(502), httpx2.Response(200, json=SESSION))
        clerk = AsyncClerk(
            "sk_test_x", transport=transport, retry_config=RETRIES, debug_logger=mine
        )
        await clerk.sessions.get("sess_1")
        # Derived clients keep it.
        await clerk.with_options(timeout_ms=1000).sessions.get("sess_1")
    finally:
        mine.removeHandler(handler)
    assert [r.clerk_outcome for r in seen] == [502, 200, 200]  # type: ignore[attr-defined]
    assert records_of(caplog, logging.DEBUG) == []


def test_a_debug_logger_must_be_a_logger() -> None:
    with pytest.raises(TypeError, match=r"logging\.Logger"):
        AsyncClerk("sk_test_x", debug_logger=print)  # type: ignore[arg-type]


async def test_nothing_is_measured_when_no_logger_listens(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hot path checks isEnabledFor before timing or formatting anything.
    caplog.set_level(logging.INFO, logger="clerk_sessions")
    calls: list[str] = []
    monkeypatch.setattr(Transport, "_log_attempt", lambda *args: calls.append("log"))
    clerk = AsyncClerk("sk_test_x", transport=scripted(httpx2.Response(200, json=SESSION)))
    await clerk.sessions.get("sess_1")
    assert calls == []


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


ONE_CALL = """
import anyio, httpx2
from clerk_sessions import AsyncClerk
async def main():
    for _ in range(2):  # two clients: still one handler
        answer = httpx2.MockTransport(lambda request: httpx2.Response(200, json=[]))
        clerk = AsyncClerk("sk_test_x", transport=answer)
        await clerk.sessions.list(user_id="u")
anyio.run(main)
"""


@pytest.mark.parametrize(
    ("level", "debug_lines"), [("debug", 2), ("DEBUG", 2), ("info", 0), ("warning", 0)]
)
def test_clerk_sessions_log_attaches_one_stderr_handler(level: str, debug_lines: int) -> None:
    result = run_python(ONE_CALL, {"CLERK_SESSIONS_LOG": level})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("DEBUG clerk_sessions: GET /sessions?user_id=u -> 200") == (
        debug_lines
    )


def test_without_clerk_sessions_log_nothing_is_printed() -> None:
    env = {"CLERK_SESSIONS_LOG": ""}
    result = run_python(ONE_CALL, env)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_bad_clerk_sessions_log_value_says_what_to_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_logging, "_configured", False)
    monkeypatch.setenv("CLERK_SESSIONS_LOG", "verbose")
    with pytest.raises(errors.ConfigurationError, match="debug, info or warning"):
        AsyncClerk("sk_test_x")


def test_no_secret_reaches_any_record_or_stderr(tmp_path: Path) -> None:
    """Every operation of both clients (plain and raw), retries over injected faults,
    networkless and JWKS verification, and a bulk revocation, at DEBUG everywhere: the
    secret key, session tokens (JWTs), and refresh tokens appear nowhere."""
    records_file = tmp_path / "records.log"
    result = subprocess.run(
        [sys.executable, "-m", "tests.conventions._leak_probe", str(records_file)],
        env={**os.environ, "CLERK_SESSIONS_LOG": "debug"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    secrets: list[str] = json.loads(result.stdout)
    records = records_file.read_text()
    stderr = result.stderr
    # The run did what it says: requests, retries, JWKS and bulk are all in the log.
    assert stderr.count("DEBUG clerk_sessions:") > 60
    assert "INFO clerk_sessions: retrying in" in stderr
    assert "GET /jwks -> 200" in stderr
    assert "/revoke -> 200" in stderr
    assert any(s.startswith("sk_test_") for s in secrets)
    assert any(s.startswith("rt_") for s in secrets)
    assert sum(s.startswith("eyJ") for s in secrets) > 10
    pieces = set(secrets)
    for secret in secrets:
        # Each part of a JWT on its own would leak it too (the payload is the claims,
        # the signature is what makes it a credential).
        pieces.update(part for part in secret.split(".") if len(part) > 16)
    leaked = sorted(p[:24] for p in pieces if p in records or p in stderr)
    assert leaked == []


def test_clerk_sessions_log_configures_the_logger_once_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = logging.getLogger("clerk_sessions")
    monkeypatch.setattr(_logging, "_configured", False)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.NOTSET)
    monkeypatch.setenv("CLERK_SESSIONS_LOG", " Info ")
    AsyncClerk("sk_test_x")
    AsyncClerk("sk_test_x")
    (handler,) = logger.handlers
    assert isinstance(handler, logging.StreamHandler)
    assert handler.stream is sys.stderr
    assert (handler.level, logger.level) == (logging.INFO, logging.INFO)
