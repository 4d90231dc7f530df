"""Retries: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import email.utils
import random

import pytest

from clerk_sessions import BackoffStrategy, RetryConfig, errors
from clerk_sessions._retry import RetryPolicy, parse_retry_after
from tests._engine import hx

from ._support import Script, clerk_error_json, make_client, ok, session_json

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000.0


def http_date(offset: float) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("  3  ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-1", None),
        ("-0.5", None),
        ("inf", None),
        ("-inf", None),
        ("nan", None),
        ("Infinity", None),
        ("1e3", 1000.0),
        ("soon", None),
        ("0x10", None),
        ("3 seconds", None),
        (http_date(30), 30.0),
        (http_date(-30), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
        ("Sun, 06 Nov 1994 08:49:37", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


def error(status: int, retry_after: str | None = None) -> hx.Response:
    headers = {"retry-after": retry_after} if retry_after is not None else None
    return ok(clerk_error_json("e", "e"), status=status, headers=headers)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried_until_success(status: int) -> None:
    script = Script([error(status), error(status), ok(session_json())])
    clerk, sleeps = make_client(script)
    session = await clerk.sessions.get("sess_1")
    assert session.id == "sess_1"
    assert len(script.requests) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422, 501])
async def test_other_statuses_are_never_retried(status: int) -> None:
    script = Script([error(status), ok(session_json())])
    clerk, sleeps = make_client(script)
    with pytest.raises(errors.ClerkErrors):
        await clerk.sessions.get("sess_1")
    assert len(script.requests) == 1
    assert sleeps == []


async def test_max_attempts_counts_every_attempt_and_the_last_error_is_raised() -> None:
    script = Script([error(503)])
    clerk, sleeps = make_client(script, retry_config=RetryConfig(max_attempts=3))
    with pytest.raises(errors.ServerError):
        await clerk.sessions.get("sess_1")
    assert len(script.requests) == 3
    assert len(sleeps) == 2


async def test_backoff_grows_exponentially_within_the_jitter_band() -> None:
    config = RetryConfig(
        backoff=BackoffStrategy(initial_interval_ms=100, max_interval_ms=1_000, exponent=2),
        max_attempts=6,
        jitter=0.5,
    )
    script = Script([error(500)])
    clerk, sleeps = make_client(script, retry_config=config)
    with pytest.raises(errors.ServerError):
        await clerk.sessions.get("sess_1")
    bases = [0.1, 0.2, 0.4, 0.8, 1.0]
    assert len(sleeps) == len(bases)
    for slept, base in zip(sleeps, bases, strict=True):
        assert base * 0.5 <= slept <= base


async def test_without_jitter_the_waits_are_exact() -> None:
    config = RetryConfig(
        backoff=BackoffStrategy(initial_interval_ms=10, max_interval_ms=1000, exponent=3),
        max_attempts=4,
        jitter=0,
    )
    clerk, sleeps = make_client(Script([error(502)]), retry_config=config)
    with pytest.raises(errors.ServerError):
        await clerk.sessions.get("sess_1")
    assert sleeps == pytest.approx([0.01, 0.03, 0.09])


async def test_retry_after_is_honoured_instead_of_backoff() -> None:
    script = Script([error(429, "2"), error(503, "0.25"), ok(session_json())])
    clerk, sleeps = make_client(script)
    await clerk.sessions.get("sess_1")
    assert sleeps == [2.0, 0.25]


async def test_an_unusable_retry_after_falls_back_to_backoff() -> None:
    script = Script([error(429, "nan"), ok(session_json())])
    clerk, sleeps = make_client(script, retry_config=RetryConfig(jitter=0))
    await clerk.sessions.get("sess_1")
    assert sleeps == [0.5]


async def test_a_retry_after_over_the_cap_is_raised_at_once_with_its_value() -> None:
    script = Script([error(429, "3600"), ok(session_json())])
    clerk, sleeps = make_client(script, retry_config=RetryConfig(max_retry_after_ms=60_000))
    with pytest.raises(errors.RateLimitError) as info:
        await clerk.sessions.get("sess_1")
    assert info.value.retry_after == 3600
    assert "retry after 3600 s" in str(info.value)
    assert len(script.requests) == 1 and sleeps == []


async def test_total_time_is_bounded_by_max_elapsed() -> None:
    config = RetryConfig(
        backoff=BackoffStrategy(
            initial_interval_ms=400, max_interval_ms=400, exponent=1, max_elapsed_time_ms=1000
        ),
        max_attempts=100,
        jitter=0,
    )
    clerk, sleeps = make_client(Script([error(500)]), retry_config=config)
    with pytest.raises(errors.ServerError):
        await clerk.sessions.get("sess_1")
    assert sleeps == [0.4, 0.4]  # a third wait would pass 1000 ms


async def test_connection_errors_are_retried_for_replay_safe_requests() -> None:
    script = Script([hx.ReadError("reset"), hx.RemoteProtocolError("cut"), ok(session_json())])
    clerk, _ = make_client(script)
    await clerk.sessions.revoke("sess_1")
    assert len(script.requests) == 3


async def test_connection_errors_are_not_retried_when_disabled() -> None:
    script = Script([hx.ConnectError("refused"), ok(session_json())])
    clerk, _ = make_client(script, retry_config=RetryConfig(retry_connection_errors=False))
    with pytest.raises(errors.APIConnectionError):
        await clerk.sessions.get("sess_1")
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (hx.ConnectError("refused"), True),  # never reached the server
        (hx.ConnectTimeout("slow"), True),
        (error(429, "1"), True),  # Clerk refuses before doing work
        (hx.ReadError("reset"), False),  # may have created the session
        (hx.ReadTimeout("slow"), False),
        (error(500), False),
        (error(503), False),
    ],
)
async def test_create_is_repeated_only_where_it_is_harmless(
    failure: hx.Response | Exception, retried: bool
) -> None:
    script = Script([failure, ok(session_json())])
    clerk, _ = make_client(script)
    call = clerk.sessions.create(user_id="user_1")
    if retried:
        await call
        assert len(script.requests) == 2
    else:
        with pytest.raises(errors.ClerkSessionsError):
            await call
        assert len(script.requests) == 1


async def test_refresh_is_not_repeated_after_a_server_error() -> None:
    script = Script([error(500), ok({"object": "token", "jwt": "x"})])
    clerk, _ = make_client(script)
    with pytest.raises(errors.ServerError):
        await clerk.sessions.refresh(
            "sess_1", {"expired_token": "a", "refresh_token": "b", "request_origin": "c"}
        )
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda s, r: s.revoke("sess_1", retries=r),
        lambda s, r: s.create_token("sess_1", retries=r),
        lambda s, r: s.create_token_from_template("sess_1", "t", retries=r),
    ],
)
async def test_replay_safe_posts_are_retried_on_server_errors(call: object) -> None:
    # One body that decodes both as a Session and as a SessionToken.
    script = Script([error(500), ok(session_json() | {"jwt": "x"})])
    clerk, _ = make_client(script)
    await call(clerk.sessions, RetryConfig())  # type: ignore[operator]
    assert len(script.requests) == 2


async def test_retries_none_disables_retrying_for_one_call() -> None:
    script = Script([error(503), ok(session_json())])
    clerk, _ = make_client(script)
    with pytest.raises(errors.ServerError):
        await clerk.sessions.get("sess_1", retries=None)
    assert len(script.requests) == 1
    await clerk.sessions.get("sess_1")  # the client's policy still applies elsewhere


async def test_a_per_call_config_overrides_the_clients() -> None:
    script = Script([error(503)])
    clerk, _ = make_client(script, retry_config=None)
    with pytest.raises(errors.ServerError):
        await clerk.sessions.get("sess_1", retries=RetryConfig(max_attempts=5))
    assert len(script.requests) == 5


async def test_strategy_none_never_retries() -> None:
    script = Script([error(503), ok(session_json())])
    clerk, _ = make_client(script, retry_config=RetryConfig("none"))
    with pytest.raises(errors.ServerError):
        await clerk.sessions.get("sess_1")
    assert len(script.requests) == 1


async def test_a_validation_error_is_not_retried() -> None:
    script = Script([ok({"object": "session"}), ok(session_json())])
    clerk, _ = make_client(script)
    with pytest.raises(errors.ResponseValidationError):
        await clerk.sessions.get("sess_1")
    assert len(script.requests) == 1


def test_backoff_is_capped_by_max_interval() -> None:
    policy = RetryPolicy(
        RetryConfig(backoff=BackoffStrategy(500, 2_000, 2.0, 60_000), jitter=0),
        rng=random.Random(1),
    )
    assert [policy.backoff_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 2.0, 2.0]
