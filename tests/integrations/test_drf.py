"""clerk_sessions.django.drf: ClerkAuthentication in Django REST framework's own views,
test client (APIClient) and request factory, with IsAuthenticated, against the fake on a
loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.test.utils import override_settings
from django.urls import path
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import APISettings
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from clerk_sessions.django import ClerkUser
from clerk_sessions.django.drf import ClerkAuthentication
from clerk_sessions.models import RequestState, SessionClaims
from clerk_sessions.testing import FakeClerk
from tests.conftest import REPO_ROOT

from ._support import bearer, expired_token

API_KEY_USER = "api-key-robot"


class ApiKeyUser:
    is_authenticated = True
    pk = API_KEY_USER


class ApiKeyAuthentication(BaseAuthentication):  # type: ignore[misc]
    """Another authenticator after ours: a header ``X-Api-Key: good``."""

    def authenticate(self, request: Request) -> tuple[ApiKeyUser, str] | None:
        if request.headers.get("X-Api-Key") == "good":
            return ApiKeyUser(), "api-key"
        return None


# Per view: APIView reads DEFAULT_AUTHENTICATION_CLASSES once, when DRF is imported, so
# the setting cannot be changed for a test.
AUTHENTICATION = [ClerkAuthentication, ApiKeyAuthentication]


class WhoAmI(APIView):  # type: ignore[misc]
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        user = request.user
        claims = request.auth
        return Response(
            {
                "user": type(user).__name__,
                "pk": user.pk,
                "is_anonymous": getattr(user, "is_anonymous", None),
                "session_id": claims.session_id if isinstance(claims, SessionClaims) else None,
            }
        )


class Open(APIView):  # type: ignore[misc]
    authentication_classes = AUTHENTICATION
    permission_classes: list[type] = []

    def get(self, request: Request) -> Response:
        return Response({"authenticated": bool(request.user and request.user.is_authenticated)})


urlpatterns = [path("whoami/", WhoAmI.as_view()), path("open/", Open.as_view())]


@pytest.fixture(autouse=True)
def drf(django_env: FakeClerk) -> Iterator[FakeClerk]:
    """This module's views, over `django_env`'s settings."""
    with override_settings(
        ROOT_URLCONF=__name__,
        # The test project has no django.contrib.auth (AnonymousUser's app).
        REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
    ):
        yield django_env


@pytest.fixture
def session(drf: FakeClerk) -> dict[str, Any]:
    return drf.add_session(user_id="user_alice")


# ---------------------------------------------------------------- through APIClient


def test_a_valid_token_makes_the_user_a_clerk_user_and_auth_the_claims(
    drf: FakeClerk, session: dict[str, Any]
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {drf.mint_token(session['id'])}")
    answer = client.get("/whoami/")
    assert answer.status_code == 200
    assert answer.json() == {
        "user": "ClerkUser",
        "pk": "user_alice",
        "is_anonymous": False,
        "session_id": session["id"],
    }


def test_the_session_cookie_is_read_too(drf: FakeClerk, session: dict[str, Any]) -> None:
    client = APIClient()
    client.cookies["__session"] = drf.mint_token(session["id"])
    assert client.get("/whoami/").json()["pk"] == "user_alice"


def test_no_token_is_a_401_with_a_bearer_challenge_not_a_403() -> None:
    answer = APIClient().get("/whoami/")
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == "Bearer"


def test_no_token_lets_the_next_authenticator_run() -> None:
    answer = APIClient().get("/whoami/", headers={"X-Api-Key": "good"})
    assert answer.status_code == 200
    assert answer.json()["pk"] == API_KEY_USER


def test_no_token_on_an_open_view_is_anonymous() -> None:
    assert APIClient().get("/open/").json() == {"authenticated": False}


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(lambda fake, sid: expired_token(fake, sid), "token_expired", id="expired"),
        pytest.param(lambda fake, sid: "not-a-jwt", "token_malformed", id="malformed"),
        pytest.param(
            lambda fake, sid: fake.mint_token(sid)[:-4] + "AAAA", "invalid_signature", id="forged"
        ),
    ],
)
def test_a_bad_token_is_a_401_naming_the_reason(
    drf: FakeClerk, session: dict[str, Any], token: Any, reason: str
) -> None:
    answer = APIClient().get("/whoami/", headers=bearer(token(drf, session["id"])))
    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == (
        f'Bearer error="invalid_token", error_description="{reason}"'
    )
    assert answer.json() == {"detail": reason}


def test_a_bad_token_is_refused_even_with_another_credential(
    drf: FakeClerk, session: dict[str, Any]
) -> None:
    # DRF stops at the first authenticator that raises: a bad token is not "no token".
    headers = {**bearer(expired_token(drf, session["id"])), "X-Api-Key": "good"}
    assert APIClient().get("/whoami/", headers=headers).status_code == 401


def test_a_bad_token_on_an_open_view_is_still_a_401(
    drf: FakeClerk, session: dict[str, Any]
) -> None:
    answer = APIClient().get("/open/", headers=bearer(expired_token(drf, session["id"])))
    assert answer.status_code == 401


def test_the_authorized_parties_setting_is_enforced(
    drf: FakeClerk, session: dict[str, Any]
) -> None:
    token = drf.mint_token(session["id"])  # azp: http://localhost:3000
    with override_settings(CLERK_AUTHORIZED_PARTIES=["https://app.example"]):
        answer = APIClient().get("/whoami/", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json() == {"detail": "invalid_authorized_party"}


def test_an_unusable_verification_key_is_a_503_not_a_401(
    drf: FakeClerk, session: dict[str, Any]
) -> None:
    broken = "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"
    with override_settings(CLERK_JWT_KEY=broken):
        answer = APIClient().get("/whoami/", headers=bearer(drf.mint_token(session["id"])))
    assert answer.status_code == 503
    assert answer["Retry-After"] == "5"
    assert "WWW-Authenticate" not in answer


# ---------------------------------------------------------------- the class itself


def test_authenticate_returns_the_user_and_claims(drf: FakeClerk, session: dict[str, Any]) -> None:
    request = Request(APIRequestFactory().get("/", headers=bearer(drf.mint_token(session["id"]))))
    user, claims = ClerkAuthentication().authenticate(request)
    assert isinstance(user, ClerkUser)
    assert user.claims is claims
    assert (user.pk, user.id, claims.session_id) == ("user_alice", "user_alice", session["id"])


def test_authenticate_without_a_token_is_none() -> None:
    assert ClerkAuthentication().authenticate(Request(APIRequestFactory().get("/"))) is None


def test_the_middlewares_verdict_is_used_without_verifying_again(
    drf: FakeClerk, session: dict[str, Any]
) -> None:
    # What ClerkMiddleware leaves on the request. The request itself carries no token:
    # verifying it again would find none.
    claims = verified_claims(drf, session["id"])
    django_request = APIRequestFactory().get("/")
    django_request.clerk_auth = RequestState(is_signed_in=True, claims=claims)
    user, found = ClerkAuthentication().authenticate(Request(django_request))
    assert found is claims
    assert user.pk == "user_alice"


def test_authenticate_header_is_bearer() -> None:
    request = Request(APIRequestFactory().get("/"))
    assert ClerkAuthentication().authenticate_header(request) == "Bearer"


def verified_claims(fake: FakeClerk, session_id: str) -> SessionClaims:
    request = Request(APIRequestFactory().get("/", headers=bearer(fake.mint_token(session_id))))
    result = ClerkAuthentication().authenticate(request)
    assert result is not None
    return result[1]


# ---------------------------------------------------------------- ClerkUser


def test_clerk_user_is_what_django_asks_of_a_signed_in_user(
    drf: FakeClerk, session: dict[str, Any]
) -> None:
    user = ClerkUser(verified_claims(drf, session["id"]))
    assert (user.is_authenticated, user.is_anonymous, user.is_active) == (True, False, True)
    assert (user.is_staff, user.is_superuser) == (False, False)
    assert user.get_username() == user.username == str(user) == "user_alice"
    assert not user.has_perm("app.change_thing")
    assert not user.has_perms(["app.view_thing"])
    assert not user.has_module_perms("app")
    assert user == ClerkUser(user.claims)
    assert len({user, ClerkUser(user.claims)}) == 1
    assert repr(user) == "ClerkUser(user_id='user_alice')"


# ---------------------------------------------------------------- DRF stays optional


def test_the_rest_of_the_integration_never_imports_drf() -> None:
    code = (
        "import sys\n"
        "import clerk_sessions.django, clerk_sessions.django.middleware\n"
        "import clerk_sessions.django.decorators, clerk_sessions.django.checks\n"
        "assert 'rest_framework' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, env=env, timeout=60)


def test_without_drf_the_module_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['rest_framework'] = None  # as if DRF were not installed\n"
        "try:\n"
        "    import clerk_sessions.django.drf\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert "pip install djangorestframework" in done.stdout, done.stderr


def test_the_settings_path_in_the_docs_names_the_class() -> None:
    documented = APISettings(
        {"DEFAULT_AUTHENTICATION_CLASSES": ["clerk_sessions.django.drf.ClerkAuthentication"]}
    )
    [loaded] = documented.DEFAULT_AUTHENTICATION_CLASSES
    assert loaded is ClerkAuthentication
