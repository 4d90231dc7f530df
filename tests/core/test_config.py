"""Client configuration: the key, the server URL, timeouts, bad settings."""

from __future__ import annotations

import pytest

from clerk_sessions import AsyncClerk, BackoffStrategy, RateLimit, RetryConfig, errors
from tests._engine import hx

from ._support import Script, ok, session_json

pytestmark = pytest.mark.anyio


def test_missing_secret_key_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_SECRET_KEY", raising=False)
    with pytest.raises(errors.ConfigurationError, match="CLERK_SECRET_KEY"):
        AsyncClerk()


def test_empty_secret_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_SECRET_KEY", "")
    with pytest.raises(errors.ConfigurationError, match="CLERK_SECRET_KEY"):
        AsyncClerk()


def test_configuration_error_is_also_a_value_error() -> None:
    assert issubclass(errors.ConfigurationError, ValueError)


async def test_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_SECRET_KEY", "sk_test_env")
    monkeypatch.setenv("CLERK_API_URL", "http://localhost:9999/v1/")
    script = Script([ok(session_json())])
    clerk = AsyncClerk(transport=hx.MockTransport(script))
    await clerk.sessions.get("sess_1")
    request = script.requests[0]
    assert str(request.url) == "http://localhost:9999/v1/sessions/sess_1"
    assert request.headers["authorization"] == "Bearer sk_test_env"


def test_explicit_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_API_URL", "http://env.test/v1")
    clerk = AsyncClerk("sk_test_x", server_url="https://explicit.test/v1")
    assert clerk.server_url == "https://explicit.test/v1"


def test_the_default_server_is_clerks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_API_URL", raising=False)
    assert AsyncClerk("sk_test_x").server_url == "https://api.clerk.com/v1"


@pytest.mark.parametrize("url", ["api.clerk.com/v1", "ftp://x/v1", "http://", "::::"])
def test_a_bad_server_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="server_url"):
        AsyncClerk("sk_test_x", server_url=url)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout_ms": 0}, "timeout_ms"),
        ({"timeout_ms": "5"}, "timeout_ms"),
        ({"retry_config": {"max_attempts": 3}}, "retry_config"),
        ({"rate_limit": (100, 10)}, "rate_limit"),
        ({"api_version": ""}, "api_version"),
        (
            {
                "http_client": hx.AsyncClient(),
                "transport": hx.MockTransport(lambda r: hx.Response(200)),
            },
            "not both",
        ),
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=match):
        AsyncClerk("sk_test_x", **kwargs)  # type: ignore[arg-type]


def test_a_key_with_a_newline_is_rejected_without_echoing_it() -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncClerk("sk_test_secret\n")
    assert "sk_test_secret" not in str(info.value)


def test_repr_shows_the_server_not_the_key() -> None:
    clerk = AsyncClerk("sk_test_hidden", server_url="https://api.test/v1")
    assert repr(clerk) == "AsyncClerk(server_url='https://api.test/v1')"


@pytest.mark.parametrize(
    "build",
    [
        lambda: RetryConfig(max_attempts=0),
        lambda: RetryConfig(jitter=2),
        lambda: RetryConfig("sometimes"),  # type: ignore[arg-type]
        lambda: BackoffStrategy(initial_interval_ms=-1),
        lambda: BackoffStrategy(exponent=float("nan")),
        lambda: RateLimit(0, 10),
        lambda: RateLimit(10, 0),
        lambda: RateLimit(10, float("inf")),
    ],
)
def test_bad_policy_values_are_rejected(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_the_seed_retry_config_shape_works_positionally() -> None:
    config = RetryConfig("backoff", BackoffStrategy(1, 50, 1.1, 100), False)
    assert config.backoff.initial_interval_ms == 1
    assert config.retry_connection_errors is False


async def test_timeout_applies_to_a_request() -> None:
    seen: list[object] = []

    def handler(request: hx.Request) -> hx.Response:
        seen.append(request.extensions["timeout"])
        return ok(session_json())

    clerk = AsyncClerk("sk_test_x", timeout_ms=1500, transport=hx.MockTransport(handler))
    await clerk.sessions.get("sess_1")
    assert seen == [{"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}]


async def test_timeout_applies_to_a_user_http_client_when_given() -> None:
    seen: list[object] = []

    def handler(request: hx.Request) -> hx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return ok(session_json())

    async with hx.AsyncClient(transport=hx.MockTransport(handler), timeout=99) as http:
        await AsyncClerk("sk_test_x", http_client=http).sessions.get("sess_1")
        await AsyncClerk("sk_test_x", http_client=http, timeout_ms=2000).sessions.get("sess_1")
    assert seen == [99, 2.0]


async def test_async_context_manager_closes_the_owned_pool() -> None:
    async with AsyncClerk("sk_test_x") as clerk:
        pass
    assert clerk._transport.client.is_closed
