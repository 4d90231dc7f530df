"""FastAPI and Starlette integration (extra ``fastapi``).

One `AsyncClerk` per application, opened and closed by the lifespan, and dependencies
that hand it out or authenticate the caller::

    from fastapi import Depends, FastAPI
    from clerk_sessions.fastapi import ClerkAuth, clerk_lifespan, get_clerk
    from clerk_sessions.models import SessionClaims

    app = FastAPI(lifespan=clerk_lifespan())        # reads CLERK_SECRET_KEY at startup
    require_session = ClerkAuth(authorized_parties=["https://example.com"])

    @app.get("/me")
    async def me(claims: SessionClaims = Depends(require_session)) -> dict[str, str]:
        return {"user_id": claims.user_id}

Every authenticating dependency is also an OpenAPI security scheme (HTTP bearer, JWT,
named `SECURITY_SCHEME`): ``/docs`` shows an Authorize button, and the token typed there
reaches the routes. The ``Annotated`` aliases `ClaimsDep`, `OptionalClaimsDep` and
`ClerkDep` save writing ``Depends(...)``::

    @app.get("/me")
    async def me(claims: ClaimsDep, clerk: ClerkDep) -> dict[str, str]: ...

FastAPI is optional: without it, the same pieces serve a plain Starlette app (pass
``clerk_lifespan()`` as its ``lifespan`` and ``await`` a `ClerkAuth` with the request
inside an endpoint; the `HTTPException` it raises becomes the 401 answer), and only the
aliases, which are FastAPI's own idiom, are missing. For Starlette's
``AuthenticationMiddleware`` see `clerk_sessions.starlette`.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' signatures at
# run time, and cannot resolve string annotations of a callable instance's `__call__`.
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Collection
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, HTTPConnection, Request

from clerk_sessions import AsyncClerk
from clerk_sessions.errors import WebhookVerificationError
from clerk_sessions.models import RequestState, SessionClaims
from clerk_sessions.verification import UNAVAILABLE_REASONS, Reason
from clerk_sessions.webhooks import MAX_WEBHOOK_BYTES, WebhookEvent, verify_webhook

# FastAPI finds an operation's security schemes among its dependencies that are instances
# of its SecurityBase. With FastAPI installed the dependencies below are such instances;
# without it (a plain Starlette app, where nothing reads OpenAPI) they are plain classes
# that behave the same, and importing this module does not need FastAPI.
if TYPE_CHECKING:
    from fastapi import Depends
    from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
    from fastapi.security.base import SecurityBase

    HAS_FASTAPI = True
else:
    try:
        from fastapi import Depends
        from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
        from fastapi.security.base import SecurityBase
    except ModuleNotFoundError as exc:
        if exc.name != "fastapi":
            raise  # FastAPI is there but broken: say so, rather than hide it
        HAS_FASTAPI = False
        SecurityBase = object
    else:
        HAS_FASTAPI = True

__all__ = [
    "AUTH_STATE_ATTRIBUTE",
    "SECURITY_SCHEME",
    "STATE_ATTRIBUTE",
    "ClerkAuth",
    "ClerkWebhook",
    "OptionalClerkAuth",
    "clerk_lifespan",
    "clerk_webhook",
    "get_clerk",
    "optional_session",
    "require_session",
]

AppT = TypeVar("AppT", bound=Starlette)
Lifespan = Callable[[AppT], AbstractAsyncContextManager[Any]]

#: The ``app.state`` attribute that holds the application's `AsyncClerk`.
STATE_ATTRIBUTE = "clerk"
#: The ``request.state`` attribute where the dependencies leave the `RequestState`.
AUTH_STATE_ATTRIBUTE = "clerk_auth"
SECURITY_SCHEME = "ClerkSession"
"""The name of the dependencies' OpenAPI security scheme (``components.securitySchemes``):
one for all of them, so that Swagger UI asks for the token once."""
_SCHEME_DESCRIPTION = (
    "A Clerk session token: the `__session` cookie of a signed-in browser, or what "
    "`getToken()` returns in Clerk's frontend SDKs. Sent as `Authorization: Bearer <token>`."
)


def clerk_lifespan(
    lifespan: Lifespan[AppT] | None = None, /, **client_kwargs: Any
) -> Lifespan[AppT]:
    """A lifespan that owns one `AsyncClerk` for the application's lifetime.

    The client is built at startup from ``client_kwargs`` (the `AsyncClerk` constructor's
    keywords; with none, the secret key and URL come from ``CLERK_SECRET_KEY`` and
    ``CLERK_API_URL``), stored as ``app.state.clerk`` and closed at shutdown. Building it
    at startup, not at import, means a missing key stops the server from starting,
    and importing the application needs no configuration.

    Pass your own lifespan to run inside it (the client is already there when yours
    starts, and still open while yours shuts down); whatever yours yields (lifespan
    state) is passed on::

        app = FastAPI(lifespan=clerk_lifespan(my_lifespan, timeout_ms=5_000))
    """

    @contextlib.asynccontextmanager
    async def run(app: AppT) -> AsyncGenerator[Any, None]:
        async with AsyncClerk(**client_kwargs) as clerk:
            setattr(app.state, STATE_ATTRIBUTE, clerk)
            try:
                if lifespan is None:
                    yield None
                else:
                    async with lifespan(app) as state:
                        yield state
            finally:
                delattr(app.state, STATE_ATTRIBUTE)

    return run


def get_clerk(request: HTTPConnection) -> AsyncClerk:
    """The application's `AsyncClerk` (a dependency: ``clerk = Depends(get_clerk)``).

    Raises `RuntimeError` when the application was not started with `clerk_lifespan`.
    """
    clerk: object = getattr(request.app.state, STATE_ATTRIBUTE, None)
    if not isinstance(clerk, AsyncClerk):
        raise RuntimeError(
            "no AsyncClerk on app.state: create the application with "
            "lifespan=clerk_lifespan() (and run its lifespan, e.g. `with TestClient(app)`)"
        )
    return clerk


class _Authenticator(SecurityBase):
    # The shared half of both dependencies: settings, verification, leaving the
    # RequestState on request.state for handlers that want the reason, and the OpenAPI
    # security scheme. The token may also come in the __session cookie; the scheme names
    # the header only, which is what Swagger UI can send.

    def __init__(
        self,
        *,
        authorized_parties: Collection[str] | None = None,
        accept_pending: bool = False,
        leeway_s: float = 5,
        jwt_key: str | None = None,
    ) -> None:
        if isinstance(authorized_parties, str):
            # A str is a Collection[str] of characters: "https://a.com" would match "h".
            raise TypeError("authorized_parties must be a collection of origins, not a str")
        self.authorized_parties = (
            None if authorized_parties is None else frozenset(authorized_parties)
        )
        self.accept_pending = accept_pending
        self.leeway_s = leeway_s
        self.jwt_key = jwt_key
        if HAS_FASTAPI:
            self.model = HTTPBearerModel(bearerFormat="JWT", description=_SCHEME_DESCRIPTION)
            self.scheme_name = SECURITY_SCHEME

    def __repr__(self) -> str:
        parties = None if self.authorized_parties is None else sorted(self.authorized_parties)
        return (
            f"{type(self).__name__}(authorized_parties={parties!r}, "
            f"accept_pending={self.accept_pending!r})"
        )

    async def authenticate(self, request: HTTPConnection) -> RequestState:
        """Authenticate ``request`` with the application's client; never raises for a
        bad token. The state is also left on ``request.state.clerk_auth``."""
        state = await get_clerk(request).authenticate_request(
            request,
            authorized_parties=self.authorized_parties,
            leeway_s=self.leeway_s,
            jwt_key=self.jwt_key,
            accept_pending=self.accept_pending,
        )
        setattr(request.state, AUTH_STATE_ATTRIBUTE, state)
        return state


def _refusal(reason: str) -> HTTPException:
    if reason in UNAVAILABLE_REASONS:
        return HTTPException(
            503, detail="authentication is unavailable", headers={"Retry-After": "5"}
        )
    if reason == Reason.MISSING_TOKEN:
        # RFC 6750 section 3.1: a request without credentials gets no error code.
        challenge = "Bearer"
    else:
        # Reason codes are fixed snake_case words: nothing to escape in the quoted string.
        challenge = f'Bearer error="invalid_token", error_description="{reason}"'
    return HTTPException(401, detail=reason, headers={"WWW-Authenticate": challenge})


class ClerkAuth(_Authenticator):
    """A dependency that returns the caller's `SessionClaims`, or answers 401.

    ``Depends(ClerkAuth(...))`` authenticates the request's ``Authorization: Bearer``
    header or ``__session`` cookie with the application's `AsyncClerk` (see
    `clerk_lifespan`). When the caller is not signed in it raises `HTTPException` 401 with
    ``WWW-Authenticate: Bearer error="invalid_token", error_description="<reason>"``
    (just ``Bearer`` when the request carried no token, as RFC 6750 asks), and 503 when
    no verification key is available. The `RequestState` is left on
    ``request.state.clerk_auth`` either way. In FastAPI's OpenAPI schema it is the HTTP
    bearer scheme `SECURITY_SCHEME`, listed under ``security`` by every operation that
    depends on it.

    :param authorized_parties: the origins accepted in ``azp`` (None: any).
    :param accept_pending: also let in sessions that are ``pending`` (tasks left).
    :param leeway_s: tolerated clock skew for ``exp``, ``nbf`` and ``iat``.
    :param jwt_key: the instance's PEM public key, for verification without ``/jwks``.
    """

    async def __call__(self, request: HTTPConnection) -> SessionClaims:
        state = await self.authenticate(request)
        if not state.is_signed_in or state.claims is None:
            raise _refusal(state.reason or Reason.MISSING_TOKEN)
        return state.claims


class OptionalClerkAuth(_Authenticator):
    """A dependency that returns the caller's `SessionClaims`, or None when signed out.

    Takes the parameters of `ClerkAuth`. Any signed-out state gives None, a bad token as
    well as none at all; ``request.state.clerk_auth.reason`` says which. Only an
    unavailable verification key still answers 503, so that an outage does not silently
    look like a signed-out caller.
    """

    async def __call__(self, request: HTTPConnection) -> SessionClaims | None:
        state = await self.authenticate(request)
        if state.is_signed_in:
            return state.claims
        if state.reason in UNAVAILABLE_REASONS:
            raise _refusal(state.reason or Reason.JWKS_UNAVAILABLE)
        return None


#: ``Depends(require_session)``: `ClerkAuth` with the defaults.
require_session = ClerkAuth()
#: ``Depends(optional_session)``: `OptionalClerkAuth` with the defaults.
optional_session = OptionalClerkAuth()


# ---------------------------------------------------------------------- webhooks
# Session events (extra ``webhooks``): a dependency that verifies Clerk's deliveries.

_logger = logging.getLogger("clerk_sessions")


class ClerkWebhook:
    """A dependency that returns the verified `WebhookEvent` of a delivery, or answers 400.

    ``Depends(ClerkWebhook(...))`` reads the request's body and ``svix-*`` headers and
    verifies them with `clerk_sessions.webhooks.verify_webhook`. A bad delivery (forged,
    replayed, unsigned, over 1 MiB, not a Clerk event) raises `HTTPException` 400 whose
    detail is the failure's reason (``missing_headers``, ``timestamp``, ``signature``,
    ``payload``), never a 500; a body over the limit is refused before it is read (the
    endpoint finds the payload in ``event.raw``, not in ``request.body()``). No
    secret configured at all raises `ConfigurationError`: that is the server's fault, and
    a 5XX makes Clerk try the delivery again later.

    :param secret: the endpoint's signing secret (``whsec_...``); default
        ``$CLERK_WEBHOOK_SIGNING_SECRET``, read at each delivery.
    :param tolerance_s: how far a delivery's timestamp may be from now, either way.
    """

    def __init__(self, *, secret: str | None = None, tolerance_s: float = 300) -> None:
        self._secret = secret
        self.tolerance_s = tolerance_s

    def __repr__(self) -> str:
        source = "$CLERK_WEBHOOK_SIGNING_SECRET" if self._secret is None else "given"
        return f"ClerkWebhook(secret={source}, tolerance_s={self.tolerance_s!r})"

    async def __call__(self, request: Request) -> WebhookEvent:
        body = await _capped_body(request)
        try:
            return verify_webhook(
                body, request.headers, secret=self._secret, tolerance_s=self.tolerance_s
            )
        except WebhookVerificationError as exc:
            # The answer says only the reason; the operator's log says what was wrong.
            _logger.info("refused a webhook delivery: %s", exc)
            raise HTTPException(400, detail=exc.reason) from None


async def _capped_body(request: Request) -> bytes:
    """The body, read no further than one byte past the limit (which is then refused)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        _logger.info("refused a webhook delivery: payload: %s bytes, over 1 MiB", declared)
        raise HTTPException(400, detail="payload")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_WEBHOOK_BYTES:
                break
    except ClientDisconnect:
        raise HTTPException(400, detail="payload") from None
    return bytes(body)


#: ``Depends(clerk_webhook)``: `ClerkWebhook` with the defaults (the secret from
#: ``$CLERK_WEBHOOK_SIGNING_SECRET``).
clerk_webhook = ClerkWebhook()
if TYPE_CHECKING or HAS_FASTAPI:
    __all__ += ["ClaimsDep", "ClerkDep", "OptionalClaimsDep"]

    ClaimsDep = Annotated[SessionClaims, Depends(require_session)]
    """``claims: ClaimsDep``: the caller's `SessionClaims`, or 401 (`require_session`:
    any authorized party; for yours, ``Annotated[SessionClaims,
    Depends(ClerkAuth(authorized_parties=[...]))]``)."""
    OptionalClaimsDep = Annotated[SessionClaims | None, Depends(optional_session)]
    """``claims: OptionalClaimsDep``: the caller's `SessionClaims`, or None when signed
    out (`optional_session`)."""
    ClerkDep = Annotated[AsyncClerk, Depends(get_clerk)]
    """``clerk: ClerkDep``: the application's `AsyncClerk` (`get_clerk`)."""
else:

    def __getattr__(name: str) -> Any:
        if name in {"ClaimsDep", "OptionalClaimsDep", "ClerkDep"}:
            raise ImportError(
                f"clerk_sessions.fastapi.{name} is a FastAPI Annotated alias and needs "
                "FastAPI: pip install fastapi (in a plain Starlette app, await "
                "require_session(request) or use clerk_sessions.starlette instead)"
            )
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
