"""clerk_sessions.django in sync (WSGI) mode: settings, checks, the process-wide client,
the middleware, require_session and the example project's views, against the fake on a
loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import checks
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import override_settings

from clerk_sessions import Clerk
from clerk_sessions.django import (
    ClerkMiddleware,
    clerk_settings,
    get_client,
    require_session,
)
from clerk_sessions.django.checks import check_settings
from clerk_sessions.testing import FakeClerk
from tests.conftest import REPO_ROOT

from ._support import bearer, expired_token

pytestmark = pytest.mark.usefixtures("django_env")


def through_middleware(**headers: str) -> HttpRequest:
    """A request after `ClerkMiddleware` ran on it (sync mode)."""
    request = RequestFactory().get("/", headers=headers)
    seen: list[HttpRequest] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse()

    ClerkMiddleware(view)(request)
    return seen[0]


# ---------------------------------------------------------------- settings


def test_importing_the_integration_reads_no_settings() -> None:
    code = (
        "import clerk_sessions.django, clerk_sessions.django.checks, clerk_sessions.django.apps\n"
        "from django.conf import settings\n"
        "assert not settings.configured, 'settings were read at import'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=env)


def test_settings_are_read_again_after_they_change(django_env: FakeClerk) -> None:
    assert clerk_settings().secret_key == django_env.secret_key
    with override_settings(CLERK_AUTHORIZED_PARTIES=["https://app.example"]):
        assert clerk_settings().authorized_parties == frozenset({"https://app.example"})
    assert clerk_settings().authorized_parties is None


def test_a_string_for_authorized_parties_is_refused() -> None:
    with (
        override_settings(CLERK_AUTHORIZED_PARTIES="https://app.example"),
        pytest.raises(TypeError, match="list of origins"),
    ):
        clerk_settings()


# ---------------------------------------------------------------- checks


def clerk_checks() -> list[checks.CheckMessage]:
    # Through the registry, which shows the AppConfig registered them.
    return checks.run_checks(tags=["clerk_sessions"])  # type: ignore[no-any-return]


@pytest.fixture
def parties_set(django_env: FakeClerk) -> Iterator[None]:
    """Authorized parties configured (over `django_env`'s settings): the checks then have
    nothing to warn about."""
    with override_settings(CLERK_AUTHORIZED_PARTIES=["https://app.example"]):
        yield


@pytest.mark.usefixtures("parties_set")
def test_the_checks_pass_with_a_key() -> None:
    assert clerk_checks() == []


@pytest.mark.usefixtures("parties_set")
def test_a_missing_key_is_error_e001_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLERK_SECRET_KEY", raising=False)
    with override_settings(CLERK_SECRET_KEY=None):
        [error] = clerk_checks()
    assert error.id == "clerk_sessions.E001"
    assert error.level == checks.ERROR
    assert "CLERK_SECRET_KEY" in error.hint


@pytest.mark.usefixtures("parties_set")
def test_the_key_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_SECRET_KEY", "sk_test_from_env")
    with override_settings(CLERK_SECRET_KEY=""):
        assert clerk_checks() == []


@pytest.mark.parametrize(
    ("overrides", "error_id"),
    [
        pytest.param({"CLERK_AUTHORIZED_PARTIES": "https://a.example"}, "E002", id="parties str"),
        pytest.param({"CLERK_AUTHORIZED_PARTIES": [1]}, "E002", id="parties not str"),
        pytest.param({"CLERK_SECRET_KEY": 42}, "E002", id="key not str"),
        pytest.param({"CLERK_JWT_KEY": "not a pem"}, "E003", id="jwt key broken"),
    ],
)
@pytest.mark.usefixtures("parties_set")
def test_malformed_settings_are_errors(overrides: dict[str, Any], error_id: str) -> None:
    with override_settings(**overrides):
        [error] = check_settings()
    assert error.id == f"clerk_sessions.{error_id}"


@pytest.mark.usefixtures("parties_set")
def test_a_good_jwt_key_passes(django_env: FakeClerk) -> None:
    with override_settings(CLERK_JWT_KEY=django_env.public_key_pem):
        assert check_settings() == []


def test_no_authorized_parties_is_warning_w001_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLERK_AUTHORIZED_PARTIES", raising=False)
    for unset in (None, []):
        with override_settings(CLERK_AUTHORIZED_PARTIES=unset):
            [warning] = clerk_checks()
        assert warning.id == "clerk_sessions.W001"
        assert warning.level == checks.WARNING
        assert "CLERK_AUTHORIZED_PARTIES = [" in warning.hint


def test_authorized_parties_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The clients read the variable when the setting is unset: the site is protected.
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", "https://app.example, https://admin.example")
    with override_settings(CLERK_AUTHORIZED_PARTIES=None):
        assert clerk_checks() == []
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", " , ")
    with override_settings(CLERK_AUTHORIZED_PARTIES=None):
        assert [message.id for message in clerk_checks()] == ["clerk_sessions.W001"]


# ---------------------------------------------------------------- get_client


def test_get_client_is_one_client_for_every_thread() -> None:
    seen: list[Clerk] = []
    threads = [threading.Thread(target=lambda: seen.append(get_client())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in seen}) == 1
    assert seen[0] is get_client()


def test_get_client_follows_a_settings_change(django_env: FakeClerk) -> None:
    before = get_client()
    with override_settings(CLERK_API_URL="http://127.0.0.1:9/v1"):
        during = get_client()
        assert during.server_url == "http://127.0.0.1:9/v1"
    assert before is not during
    assert get_client() is not during
    assert get_client().server_url == clerk_settings().api_url


# Forking a process that runs threads (the portal's loop, a server's) is what this test
# is about: Python 3.12+ warns of it in general.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_the_client_works_in_a_forked_child(django_env: FakeClerk) -> None:
    session = django_env.add_session(user_id="user_alice")
    token = django_env.mint_token(session["id"])
    parent = get_client()
    assert parent.authenticate_request(bearer(token)).is_signed_in  # the loop is running

    pid = os.fork()
    if pid == 0:  # the child: same cached client, its own loop and pool
        code = 1
        try:
            client = get_client()
            ok = client is parent and client.authenticate_request(bearer(token)).is_signed_in
            code = 0 if ok and client.sessions.get(session["id"]).id == session["id"] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent.authenticate_request(bearer(token)).is_signed_in


# ---------------------------------------------------------------- the middleware


def test_the_middleware_sets_the_claims_of_a_signed_in_caller(django_env: FakeClerk) -> None:
    session = django_env.add_session(user_id="user_alice")
    request = through_middleware(**bearer(django_env.mint_token(session["id"])))
    assert request.clerk_auth.is_signed_in
    assert request.clerk_session.user_id == "user_alice"
    assert request.clerk_session.session_id == session["id"]


def test_the_middleware_reads_the_session_cookie(django_env: FakeClerk) -> None:
    session = django_env.add_session()
    request = through_middleware(Cookie=f"__session={django_env.mint_token(session['id'])}")
    assert request.clerk_session.session_id == session["id"]


def test_the_middleware_lets_signed_out_callers_through_with_the_reason(
    django_env: FakeClerk,
) -> None:
    session = django_env.add_session()
    anonymous = through_middleware()
    expired = through_middleware(**bearer(expired_token(django_env, session["id"])))
    assert anonymous.clerk_session is None
    assert anonymous.clerk_auth.reason == "missing_token"
    assert expired.clerk_session is None
    assert expired.clerk_auth.reason == "token_expired"


def test_the_middleware_checks_authorized_parties_from_settings(django_env: FakeClerk) -> None:
    token = django_env.mint_token(django_env.add_session()["id"])  # azp http://localhost:3000
    with override_settings(CLERK_AUTHORIZED_PARTIES=["https://app.example"]):
        refused = through_middleware(**bearer(token))
    with override_settings(CLERK_AUTHORIZED_PARTIES=["http://localhost:3000"]):
        allowed = through_middleware(**bearer(token))
    assert refused.clerk_auth.reason == "invalid_authorized_party"
    assert allowed.clerk_auth.is_signed_in


def test_with_a_jwt_key_setting_nothing_is_fetched(django_env: FakeClerk) -> None:
    token = django_env.mint_token(django_env.add_session()["id"])
    with override_settings(CLERK_JWT_KEY=django_env.public_key_pem):
        assert through_middleware(**bearer(token)).clerk_auth.is_signed_in
    assert django_env.requests == []


def test_the_jwks_is_fetched_once_for_many_requests(django_env: FakeClerk) -> None:
    token = django_env.mint_token(django_env.add_session()["id"])
    client = Client()
    for _ in range(10):
        assert client.get("/me/", headers=bearer(token)).status_code == 200
    assert [record.raw_path for record in django_env.requests] == ["/v1/jwks"]


def test_require_session_without_the_middleware_says_what_is_missing() -> None:
    view = require_session(lambda request: HttpResponse())
    with pytest.raises(RuntimeError, match="ClerkMiddleware"):
        view(RequestFactory().get("/"))


# ---------------------------------------------------------------- the example's views


def test_me_answers_a_signed_in_caller(django_env: FakeClerk) -> None:
    session = django_env.add_session(user_id="user_alice")
    answer = Client().get("/me/", headers=bearer(django_env.mint_token(session["id"])))
    assert answer.status_code == 200
    assert answer.json() == {"user_id": "user_alice", "session_id": session["id"]}


def test_me_without_a_token_is_a_401_with_a_bare_challenge() -> None:
    answer = Client().get("/me/")
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == "Bearer"
    assert answer.json() == {"detail": "missing_token"}


@pytest.mark.parametrize("status", ["pending", "active"])
def test_me_with_a_bad_token_is_a_401_naming_the_reason(django_env: FakeClerk, status: str) -> None:
    session = django_env.add_session(status=status)
    token = (
        django_env.mint_token(session["id"])
        if status == "pending"
        else expired_token(django_env, session["id"])
    )
    reason = "session_pending" if status == "pending" else "token_expired"
    answer = Client().get("/me/", headers=bearer(token))
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == (
        f'Bearer error="invalid_token", error_description="{reason}"'
    )


def test_a_broken_jwt_key_is_a_503(django_env: FakeClerk) -> None:
    token = django_env.mint_token(django_env.add_session()["id"])
    with override_settings(CLERK_JWT_KEY="not a pem"):
        answer = Client().get("/me/", headers=bearer(token))
    assert answer.status_code == 503


def test_revoke_revokes_the_callers_other_session(django_env: FakeClerk) -> None:
    current = django_env.add_session(user_id="user_alice")
    phone = django_env.add_session(user_id="user_alice")
    answer = Client().post(
        f"/sessions/{phone['id']}/revoke/", headers=bearer(django_env.mint_token(current["id"]))
    )
    assert answer.status_code == 200
    assert answer.json() == {"id": phone["id"], "status": "revoked"}
    assert django_env.get_session(phone["id"])["status"] == "revoked"
    assert django_env.get_session(current["id"])["status"] == "active"


@pytest.mark.parametrize("target", ["other user's", "unknown"])
def test_revoke_answers_404_for_a_session_not_the_callers(
    django_env: FakeClerk, target: str
) -> None:
    current = django_env.add_session(user_id="user_alice")
    bobs = django_env.add_session(user_id="user_bob")
    session_id = bobs["id"] if target == "other user's" else "sess_does_not_exist"
    answer = Client().post(
        f"/sessions/{session_id}/revoke/", headers=bearer(django_env.mint_token(current["id"]))
    )
    assert answer.status_code == 404
    assert django_env.get_session(bobs["id"])["status"] == "active"


def test_revoke_needs_a_signed_in_caller_and_a_post(django_env: FakeClerk) -> None:
    session = django_env.add_session()
    url = f"/sessions/{session['id']}/revoke/"
    assert Client().post(url).status_code == 401
    token = django_env.mint_token(session["id"])
    assert Client().get(url, headers=bearer(token)).status_code == 405
    assert django_env.get_session(session["id"])["status"] == "active"
