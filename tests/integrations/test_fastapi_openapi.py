"""clerk_sessions.fastapi as FastAPI users expect it: the dependencies are an OpenAPI
security scheme (Swagger UI's Authorize button), the Annotated aliases, and the module
without FastAPI.

Swagger UI's side is read from what FastAPI serves: ``/openapi.json`` (the schema the UI
renders, whose ``securitySchemes`` make the Authorize button) and ``/docs`` (the page
that loads it). The token is then sent the way the UI sends an HTTP bearer scheme's
value: ``Authorization: Bearer <token>``.
"""

# No `from __future__ import annotations`: FastAPI must resolve the endpoints'
# annotations, some of which name local variables.
import subprocess
import sys
from collections.abc import Iterator
from typing import Annotated, Any, get_args

import pytest
from fastapi import APIRouter, Depends, FastAPI, Security
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from clerk_sessions import AsyncClerk
from clerk_sessions.fastapi import (
    SECURITY_SCHEME,
    ClaimsDep,
    ClerkAuth,
    ClerkDep,
    OptionalClaimsDep,
    OptionalClerkAuth,
    clerk_lifespan,
    get_clerk,
    optional_session,
    require_session,
)
from clerk_sessions.models import SessionClaims
from clerk_sessions.testing import FakeClerk
from tests.conftest import REPO_ROOT

from ._support import bearer, expired_token

DEPENDENCIES = [
    pytest.param(require_session, id="require_session"),
    pytest.param(optional_session, id="optional_session"),
    pytest.param(ClerkAuth(authorized_parties=["http://localhost:3000"]), id="ClerkAuth"),
    pytest.param(OptionalClerkAuth(accept_pending=True), id="OptionalClerkAuth"),
]


def lifespan(fake: FakeClerk) -> Any:
    return clerk_lifespan(
        bearer_auth=fake.secret_key,
        server_url="http://fake.clerk.test/v1",
        transport=fake.transport(),
    )


def app_with(fake: FakeClerk, auth: Any) -> FastAPI:
    """``/claims`` depends on ``auth``; ``/health`` depends on nothing."""
    app = FastAPI(lifespan=lifespan(fake))

    @app.get("/claims")
    async def claims(claims: Annotated[SessionClaims | None, Depends(auth)]) -> dict[str, Any]:
        return {"user_id": None if claims is None else claims.user_id}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
def session(fake: FakeClerk) -> dict[str, Any]:
    return fake.add_session(user_id="user_alice")


def served_schema(app: FastAPI) -> dict[str, Any]:
    with TestClient(app) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200
    schema: dict[str, Any] = answer.json()
    return schema


def swagger_authorization(schema: dict[str, Any], token: str) -> dict[str, str]:
    """The header Swagger UI sends once the token is typed into Authorize."""
    scheme = schema["components"]["securitySchemes"][SECURITY_SCHEME]
    assert (scheme["type"], scheme["scheme"].lower()) == ("http", "bearer")
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- the served schema


@pytest.mark.parametrize("auth", DEPENDENCIES)
def test_the_schema_declares_one_http_bearer_jwt_scheme(fake: FakeClerk, auth: Any) -> None:
    schemes = served_schema(app_with(fake, auth))["components"]["securitySchemes"]
    assert list(schemes) == [SECURITY_SCHEME]
    scheme = schemes[SECURITY_SCHEME]
    assert {k: scheme[k] for k in ("type", "scheme", "bearerFormat")} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert "Authorization: Bearer" in scheme["description"]


@pytest.mark.parametrize("auth", DEPENDENCIES)
def test_an_operation_that_depends_on_it_lists_the_scheme(fake: FakeClerk, auth: Any) -> None:
    paths = served_schema(app_with(fake, auth))["paths"]
    assert paths["/claims"]["get"]["security"] == [{SECURITY_SCHEME: []}]
    assert "security" not in paths["/health"]["get"]


def test_every_way_of_depending_on_it_lists_the_scheme(fake: FakeClerk) -> None:
    async def current_user(claims: ClaimsDep) -> str:
        return claims.user_id

    router = APIRouter(dependencies=[Depends(require_session)])

    @router.get("/router-level")
    async def router_level() -> None: ...

    app = FastAPI(lifespan=lifespan(fake))
    app.include_router(router)

    @app.get("/alias")
    async def alias(claims: ClaimsDep) -> None: ...

    @app.get("/optional-alias")
    async def optional_alias(claims: OptionalClaimsDep) -> None: ...

    @app.get("/decorator", dependencies=[Depends(ClerkAuth())])
    async def decorator() -> None: ...

    @app.get("/nested")
    async def nested(user_id: Annotated[str, Depends(current_user)]) -> None: ...

    @app.get("/security")
    async def security(claims: Annotated[SessionClaims, Security(require_session)]) -> None: ...

    @app.get("/client-only")
    async def client_only(clerk: ClerkDep) -> None: ...

    paths = served_schema(app)["paths"]
    listed = {path: operation["get"].get("security") for path, operation in paths.items()}
    assert listed == {
        "/router-level": [{SECURITY_SCHEME: []}],
        "/alias": [{SECURITY_SCHEME: []}],
        "/optional-alias": [{SECURITY_SCHEME: []}],
        "/decorator": [{SECURITY_SCHEME: []}],
        "/nested": [{SECURITY_SCHEME: []}],
        "/security": [{SECURITY_SCHEME: []}],
        "/client-only": None,
    }


def test_the_served_schema_is_valid_openapi(fake: FakeClerk) -> None:
    validate(served_schema(app_with(fake, require_session)))


def test_docs_serves_swagger_ui_on_that_schema(fake: FakeClerk) -> None:
    with TestClient(app_with(fake, require_session)) as client:
        page = client.get("/docs")
    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    assert "/openapi.json" in page.text


# ---------------------------------------------------------------- the Authorize flow


@pytest.fixture
def authorized_app(fake: FakeClerk) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    with TestClient(app_with(fake, require_session)) as client:
        yield client, client.get("/openapi.json").json()


def test_the_token_typed_into_authorize_reaches_the_route(
    fake: FakeClerk,
    session: dict[str, Any],
    authorized_app: tuple[TestClient, dict[str, Any]],
) -> None:
    client, schema = authorized_app
    headers = swagger_authorization(schema, fake.mint_token(session["id"]))
    answer = client.get("/claims", headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"user_id": "user_alice"}


def test_try_it_out_before_authorize_is_a_401_with_a_bearer_challenge(
    authorized_app: tuple[TestClient, dict[str, Any]],
) -> None:
    client, _ = authorized_app
    answer = client.get("/claims")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_an_expired_token_in_authorize_is_a_401_naming_the_reason(
    fake: FakeClerk,
    session: dict[str, Any],
    authorized_app: tuple[TestClient, dict[str, Any]],
) -> None:
    client, schema = authorized_app
    headers = swagger_authorization(schema, expired_token(fake, session["id"]))
    answer = client.get("/claims", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="token_expired"'
    )


# ---------------------------------------------------------------- the aliases


def test_the_aliases_are_the_dependencies_they_name() -> None:
    assert get_args(ClaimsDep)[0] is SessionClaims
    assert get_args(ClaimsDep)[1].dependency is require_session
    assert get_args(OptionalClaimsDep)[0] == SessionClaims | None
    assert get_args(OptionalClaimsDep)[1].dependency is optional_session
    assert get_args(ClerkDep)[0] is AsyncClerk
    assert get_args(ClerkDep)[1].dependency is get_clerk


def test_the_aliases_in_endpoints(fake: FakeClerk, session: dict[str, Any]) -> None:
    app = FastAPI(lifespan=lifespan(fake))

    @app.get("/me")
    async def me(claims: ClaimsDep, clerk: ClerkDep) -> dict[str, Any]:
        current = await clerk.sessions.get(claims.session_id)
        return {"user_id": claims.user_id, "status": current.status.value}

    @app.get("/maybe")
    async def maybe(claims: OptionalClaimsDep) -> dict[str, Any]:
        return {"user_id": None if claims is None else claims.user_id}

    with TestClient(app) as client:
        token = fake.mint_token(session["id"])
        assert client.get("/me", headers=bearer(token)).json() == {
            "user_id": "user_alice",
            "status": "active",
        }
        assert client.get("/me").status_code == 401
        assert client.get("/maybe").json() == {"user_id": None}
        assert client.get("/maybe", headers=bearer(token)).json() == {"user_id": "user_alice"}


# ---------------------------------------------------------------- without FastAPI

WITHOUT_FASTAPI = """
import sys
sys.modules["fastapi"] = None  # as if FastAPI were not installed
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from clerk_sessions.fastapi import clerk_lifespan, require_session
from clerk_sessions.testing import FakeClerk

fake = FakeClerk()
session = fake.add_session(user_id="user_alice")

async def me(request):
    claims = await require_session(request)
    return JSONResponse({"user_id": claims.user_id})

app = Starlette(
    routes=[Route("/me", me)],
    lifespan=clerk_lifespan(
        bearer_auth=fake.secret_key,
        server_url="http://fake.clerk.test/v1",
        transport=fake.transport(),
    ),
)
with TestClient(app) as client:
    good = client.get("/me", headers={"Authorization": "Bearer " + fake.mint_token(session["id"])})
    bad = client.get("/me")
assert good.json() == {"user_id": "user_alice"}, good.text
assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
assert "fastapi" not in {name.split(".")[0] for name, m in sys.modules.items() if m}
from clerk_sessions.fastapi import *  # every name it lists is there
try:
    from clerk_sessions.fastapi import ClaimsDep
except ImportError as exc:
    print(exc)
"""


def test_without_fastapi_the_module_serves_starlette_and_the_aliases_say_why_not() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_FASTAPI],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ClaimsDep is a FastAPI Annotated alias and needs FastAPI: pip install fastapi" in (
        done.stdout
    )


def test_a_broken_fastapi_is_not_mistaken_for_a_missing_one() -> None:
    code = (
        "import sys\n"
        "sys.modules['pydantic'] = None  # FastAPI installed, its dependency missing\n"
        "try:\n"
        "    import clerk_sessions.fastapi\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "ModuleNotFoundError pydantic", done.stderr
