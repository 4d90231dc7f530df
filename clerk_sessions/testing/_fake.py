"""FakeClerk: an in-memory Clerk Backend API for the sessions paths and ``/jwks``.

Choices where the spec is silent or the live API differs (each is tested):

- Paths are routed on the raw request path: it is split on ``/`` and each segment is
  percent-decoded on its own, so ``%2F`` inside an id stays inside that id.
- ``Clerk-API-Version`` picks the behaviour: ``POST /sessions/{id}/verify`` exists only
  for ``2025-03-12`` and older and answers 410 otherwise (also when the header is
  absent: the fake then behaves as the newest version, ``2026-05-12``).
- Revoking a session that is no longer active (already revoked, ended, expired...)
  answers 200 with the session unchanged: revoking is idempotent, as the live API
  behaves and as this SDK's ``revoke_many`` assumes.
- Tokens are minted for ``active`` and ``pending`` sessions only (``sts`` says which);
  for any other status the token endpoints answer 404 ``resource_not_found``, the only
  non-auth error the spec documents for them.
- Invalid token bodies answer 422 (an undocumented status there, see
  ``KNOWN_DEVIATIONS``); invalid refresh and verify bodies answer 400, the status those
  operations document. ``POST /sessions`` answers 422 ``form_param_missing`` without
  ``user_id`` and 404 ``resource_not_found`` for an unknown user.
- ``refresh`` answers 401 (the spec's "fall back to the handshake" signal) when the
  session is unknown or not active, the refresh token is not the session's, or the
  expired token was not minted by this fake for that session.
- Lists are newest first (``created_at``, then creation order), ``limit`` defaults to
  10 and applies to both shapes; ``paginated`` accepts only ``true``/``false``; the
  ``status`` filter takes the spec's enum (``pending`` is not in it).
- Sessions expire lazily: an ``active``/``pending`` session whose ``expire_at`` has
  passed on the injected clock reads as ``expired``.
- Tokens follow Clerk's v2 session token: ``azp``, ``exp``, ``fva``, ``iat``, ``iss``,
  ``nbf`` (``iat - 10``), ``sid``, ``sts``, ``sub``, ``v: 2``, ``o`` when the session has an
  active organization, default lifetime 60 s. Template tokens carry Clerk's default
  template claims (``azp``, ``exp``, ``iat``, ``iss``, ``jti``, ``nbf``, ``sub``) plus the
  template's claims, where a string value that is exactly a shortcode
  (``{{session.id}}``, ``{{user.id}}``, ``{{org.id}}``, ``{{org.role}}``, ``{{org.slug}}``)
  is replaced; no ``sid`` unless the template asks for it, as in Clerk.
- The quota counts requests with the right secret key (``/jwks`` excluded) in a sliding
  window; 429s are not counted.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import random
import re
import secrets
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, quote, unquote

import anyio
import attrs
from starlette.types import Message, Receive, Scope, Send

from ._faults import FaultConfig, FaultInjector, FaultName, Quota, QuotaTracker
from ._keys import SigningKey
from ._records import RequestRecord
from ._validation import ResponseValidator, resolve_validation_source

if TYPE_CHECKING:
    import httpx

    from clerk_sessions import (  # type: ignore[attr-defined, unused-ignore]
        AsyncClerk,
        Clerk,
    )

# Statuses the spec allows for a stored session, and those the list filter accepts.
SESSION_STATUSES = (
    *("active", "revoked", "ended", "expired", "removed", "abandoned", "replaced", "pending"),
)
_QUERY_STATUSES = frozenset(SESSION_STATUSES) - {"pending"}
_TOKEN_STATUSES = frozenset(("active", "pending"))
_LAST_VERIFY_VERSION = "2025-03-12"
_NEWEST_VERSION = "2026-05-12"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INTEGER = re.compile(r"^-?[0-9]+$")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DAY_MS = 86_400_000
_TOKEN_LIFETIME_S = 60
_MIN_TOKEN_S, _MAX_TOKEN_S = 30, 315_360_000

#: The key under which uvicorn (through the fake's protocol) hands the app its transport.
TRANSPORT_STATE_KEY = "clerk_sessions.fake.transport"

_HTML_ERROR = (
    b"<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
    b"<body><h1>%d %s</h1><p>The upstream server is unavailable.</p></body></html>\n"
)
_REASONS = {
    500: b"Internal Server Error",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


class ConnectionDropped(Exception):
    """Raised by ``fake.app`` to drop a connection when it cannot close the socket itself.

    On the fake's own uvicorn server the app closes the TCP connection instead; the
    in-process transport turns this into the ``httpx.RemoteProtocolError`` a real
    network gives. ``received``/``expected`` are set for a truncated body.
    """

    def __init__(
        self, message: str, *, received: int | None = None, expected: int | None = None
    ) -> None:
        super().__init__(message)
        self.received = received
        self.expected = expected


@attrs.define(kw_only=True)
class _Session:
    id: str
    user_id: str
    client_id: str
    status: str
    created_at: int
    updated_at: int
    last_active_at: int
    expire_at: int
    abandon_at: int
    last_active_organization_id: str | None
    org_role: str
    org_slug: str | None
    actor: dict[str, Any] | None
    tasks: list[dict[str, str]] | None
    latest_activity: dict[str, Any] | None
    refresh_token: str
    seq: int

    def settle(self, now_ms: int) -> None:
        # Expiry happens by itself on Clerk's side; the fake applies it when looked at.
        if self.status in _TOKEN_STATUSES and now_ms >= self.expire_at:
            self.status = "expired"
            self.updated_at = self.expire_at

    def to_json(self) -> dict[str, Any]:
        return {
            "object": "session",
            "id": self.id,
            "user_id": self.user_id,
            "client_id": self.client_id,
            "actor": self.actor,
            "status": self.status,
            "last_active_organization_id": self.last_active_organization_id,
            "last_active_at": self.last_active_at,
            "latest_activity": dict(self.latest_activity) if self.latest_activity else None,
            "expire_at": self.expire_at,
            "abandon_at": self.abandon_at,
            "updated_at": self.updated_at,
            "created_at": self.created_at,
            "tasks": [dict(task) for task in self.tasks] if self.tasks is not None else None,
        }


@attrs.frozen
class _Template:
    name: str
    claims: Mapping[str, Any]
    lifetime: int


@attrs.frozen
class _Answer:
    status: int
    payload: Any
    state_changed: bool = False
    headers: tuple[tuple[str, str], ...] = ()


class _Problem(Exception):
    """A Clerk error answer, raised from deep inside a handler."""

    def __init__(self, answer: _Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


# Route table: (segments after /v1 with "{}" for a parameter) -> {method: spec path template}.
_ROUTES: dict[tuple[str, ...], dict[str, str]] = {
    ("jwks",): {"GET": "/jwks"},
    ("sessions",): {"GET": "/sessions", "POST": "/sessions"},
    ("sessions", "{}"): {"GET": "/sessions/{session_id}"},
    ("sessions", "{}", "revoke"): {"POST": "/sessions/{session_id}/revoke"},
    ("sessions", "{}", "verify"): {"POST": "/sessions/{session_id}/verify"},
    ("sessions", "{}", "refresh"): {"POST": "/sessions/{session_id}/refresh"},
    ("sessions", "{}", "tokens"): {"POST": "/sessions/{session_id}/tokens"},
    ("sessions", "{}", "tokens", "{}"): {"POST": "/sessions/{session_id}/tokens/{template_name}"},
}


def _match(segments: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The route for decoded path segments (after ``v1``), and its parameters."""
    if not segments:
        return None
    if len(segments) == 1:
        methods = _ROUTES.get((segments[0],))
        return (methods, []) if methods else None
    if segments[0] != "sessions":
        return None
    shape = ("sessions", "{}", *(("{}" if i == 3 else s) for i, s in enumerate(segments[2:], 2)))
    methods = _ROUTES.get(shape)
    if methods is None:
        return None
    params = [segments[1]] + ([segments[3]] if len(segments) == 4 else [])
    return methods, params


def _base_url(host: str, port: int, *, tls: bool) -> str:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{'https' if tls else 'http'}://{authority}/v1"


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def _error(status: int, code: str, message: str, long_message: str, **meta: str) -> _Answer:
    error: dict[str, Any] = {"message": message, "long_message": long_message, "code": code}
    if meta:
        error["meta"] = meta
    trace = secrets.token_hex(16)
    return _Answer(status, {"errors": [error], "clerk_trace_id": trace})


def _not_found(what: str, ident: str) -> _Answer:
    return _error(404, "resource_not_found", "not found", f"No {what} was found with id {ident!r}")


def _param_problem(status: int, code: str, param: str, long_message: str) -> _Problem:
    messages = {
        "form_param_missing": "missing required parameter",
        "form_param_unknown": "is unknown",
    }
    message = messages.get(code, "is invalid")
    return _Problem(_error(status, code, message, long_message, param_name=param))


class FakeClerk:
    """An in-memory, stateful Clerk Backend API (sessions and ``/jwks``) for tests.

    Seed state with :meth:`add_user`, :meth:`add_client`, :meth:`add_session` and
    :meth:`add_template`; inspect it with :attr:`sessions`, :meth:`get_session` and the
    attempt log :attr:`requests`; talk to it in-process with :meth:`async_client`,
    :meth:`client` or :meth:`transport`, or on a loopback port with :meth:`serve`.

    Args:
        secret_key: the one secret key accepted (``sk_test_<random>`` when None).
        clock: unix time in seconds, for every timestamp, token and quota window.
        seed: seeds the ids the fake generates.
        faults: fault injection (latency, 5XX, dropped connections, truncated bodies).
        quota: Clerk's quota per secret key (None: unlimited).
        validate_responses: check every response against the spec: a directory of
            spec files or one file; True for the directory in
            ``$CLERK_SESSIONS_FAKE_VALIDATE``; False for never; None (default) to
            follow that environment variable when it is set.
        issuer: the ``iss`` of minted tokens.
        authorized_party: the ``azp`` of minted tokens.
    """

    def __init__(
        self,
        *,
        secret_key: str | None = None,
        clock: Callable[[], float] | None = None,
        seed: int = 0,
        faults: FaultConfig | None = None,
        quota: Quota | None = None,
        validate_responses: bool | str | os.PathLike[str] | None = None,
        issuer: str = "https://clerk.fake.test",
        authorized_party: str = "http://localhost:3000",
    ) -> None:
        self.secret_key = secret_key or "sk_test_" + _random_base62(40)
        self.clock: Callable[[], float] = clock or time.time
        self.seed = seed
        self.faults = faults
        self.quota = quota
        self.issuer = issuer
        self.authorized_party = authorized_party
        source = resolve_validation_source(validate_responses)
        self.validator: ResponseValidator | None = ResponseValidator(source) if source else None
        self._key = SigningKey("ins_" + _random_base62(27))
        self._secret_bytes = self.secret_key.encode()
        self._injector = FaultInjector(faults)
        self._quota = QuotaTracker(quota) if quota else None
        self._lock = threading.RLock()
        self._ids = random.Random(seed)
        self._users: dict[str, dict[str, Any]] = {}
        self._clients: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, _Session] = {}
        self._templates: dict[str, _Template] = {}
        self._requests: list[RequestRecord] = []
        self._seq = 0
        self._in_flight = 0
        self._peak_in_flight = 0
        self.app = self._asgi
        """The ASGI application (a plain ASGI 3 callable; mount it anywhere)."""

    # ------------------------------------------------------------------ seeding state

    def _new_id(self, prefix: str) -> str:
        return prefix + "_" + "".join(self._ids.choice(_BASE62) for _ in range(27))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def add_user(self, user_id: str | None = None) -> str:
        """Create a user (``user_...`` id unless given) and return its id."""
        with self._lock:
            user_id = user_id or self._new_id("user")
            self._users.setdefault(user_id, {"id": user_id, "created_at": self._now_ms()})
            return user_id

    def add_client(self, user_id: str | None = None, *, client_id: str | None = None) -> str:
        """Create a client (a browser or device), optionally for a user; return its id."""
        with self._lock:
            if user_id is not None:
                self.add_user(user_id)
            client_id = client_id or self._new_id("client")
            now = self._now_ms()
            self._clients[client_id] = {"id": client_id, "user_id": user_id, "created_at": now}
            return client_id

    def add_session(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        status: str = "active",
        session_id: str | None = None,
        created_at: int | None = None,
        expire_at: int | None = None,
        active_organization_id: str | None = None,
        org_role: str = "admin",
        org_slug: str | None = None,
        actor: Mapping[str, Any] | None = None,
        tasks: list[str] | None = None,
        latest_activity: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store a session and return its JSON (as ``GET /sessions/{id}`` answers it).

        Missing users and clients are created. ``created_at``/``expire_at`` are unix ms
        (default: now, and now + 7 days). ``tasks`` are task keys; a ``pending``
        session gets ``["choose-organization"]`` unless given.
        """
        if status not in SESSION_STATUSES:
            known = ", ".join(SESSION_STATUSES)
            raise ValueError(f"unknown session status {status!r}; one of {known}")
        with self._lock:
            user_id = self.add_user(user_id)
            if client_id is None or client_id not in self._clients:
                client_id = self.add_client(user_id, client_id=client_id)
            now = self._now_ms()
            created = now if created_at is None else created_at
            if tasks is None and status == "pending":
                tasks = ["choose-organization"]
            session_id = session_id or self._new_id("sess")
            self._seq += 1
            session = _Session(
                id=session_id,
                user_id=user_id,
                client_id=client_id,
                status=status,
                created_at=created,
                updated_at=created,
                last_active_at=created,
                expire_at=created + 7 * _DAY_MS if expire_at is None else expire_at,
                abandon_at=created + 30 * _DAY_MS,
                last_active_organization_id=active_organization_id,
                org_role=org_role,
                org_slug=org_slug,
                actor=dict(actor) if actor is not None else None,
                tasks=[{"key": key} for key in tasks] if tasks is not None else None,
                latest_activity=dict(latest_activity) if latest_activity else self._activity(),
                refresh_token=self._new_id("rt"),
                seq=self._seq,
            )
            self._sessions[session_id] = session
            return session.to_json()

    def _activity(self) -> dict[str, Any]:
        return {
            "object": "session_activity",
            "id": self._new_id("sess_activity"),
            "device_type": "Macintosh",
            "is_mobile": False,
            "browser_name": "Chrome",
            "browser_version": "126.0.0.0",
            "ip_address": "127.0.0.1",
            "city": "Testville",
            "country": "US",
        }

    def add_template(
        self, name: str, *, claims: Mapping[str, Any] | None = None, lifetime: int = 60
    ) -> None:
        """Register a JWT template for ``POST /sessions/{id}/tokens/{name}``."""
        if lifetime < 1:
            raise ValueError("a template's lifetime is at least 1 second")
        with self._lock:
            self._templates[name] = _Template(name, dict(claims or {}), lifetime)

    def set_session_status(self, session_id: str, status: str) -> dict[str, Any]:
        """Move a session to ``status`` (e.g. ``ended`` when the user signs out)."""
        if status not in SESSION_STATUSES:
            raise ValueError(f"unknown session status {status!r}")
        with self._lock:
            session = self._sessions[session_id]
            session.status = status
            session.updated_at = self._now_ms()
            return session.to_json()

    def refresh_token(self, session_id: str) -> str:
        """The session's refresh token (what FAPI's handshake sets as ``__refresh``)."""
        with self._lock:
            return self._sessions[session_id].refresh_token

    def rotate_signing_key(self) -> str:
        """Replace the signing key (new ``kid``); tokens signed before no longer verify."""
        with self._lock:
            self._key = SigningKey("ins_" + _random_base62(27))
            return self._key.kid

    def reset(self) -> None:
        """Forget all state, the attempt log, quota windows and counters; restart seeds.

        The secret key and the signing key stay.
        """
        with self._lock:
            self._users.clear()
            self._clients.clear()
            self._sessions.clear()
            self._templates.clear()
            self._requests.clear()
            self._ids = random.Random(self.seed)
            self._seq = 0
            self._peak_in_flight = self._in_flight
            self._injector.reset()
            if self._quota:
                self._quota.reset()

    # ------------------------------------------------------------------ inspection

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """Every stored session as JSON, newest first."""
        with self._lock:
            now = self._now_ms()
            ordered = sorted(
                self._sessions.values(), key=lambda s: (s.created_at, s.seq), reverse=True
            )
            for session in ordered:
                session.settle(now)
            return [session.to_json() for session in ordered]

    def get_session(self, session_id: str) -> dict[str, Any]:
        """One stored session as JSON (``KeyError`` if unknown)."""
        with self._lock:
            session = self._sessions[session_id]
            session.settle(self._now_ms())
            return session.to_json()

    @property
    def users(self) -> list[str]:
        """The ids of the stored users."""
        with self._lock:
            return list(self._users)

    @property
    def clients(self) -> list[dict[str, Any]]:
        """The stored clients (``id``, ``user_id``, ``created_at``)."""
        with self._lock:
            return [dict(client) for client in self._clients.values()]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every attempt the fake saw, in arrival order (records of attempts in flight included)."""
        with self._lock:
            return list(self._requests)

    @property
    def in_flight(self) -> int:
        """Attempts being handled right now."""
        return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most attempts ever handled at once (since creation or :meth:`reset`)."""
        return self._peak_in_flight

    # ------------------------------------------------------------------ keys and tokens

    @property
    def kid(self) -> str:
        """The ``kid`` of the current signing key."""
        return self._key.kid

    @property
    def public_key_pem(self) -> str:
        """The signing key's public half as PEM (for ``verify_token(jwt_key=...)``)."""
        return self._key.public_key_pem()

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set that ``GET /jwks`` answers."""
        return {"keys": [self._key.jwk()]}

    def mint_token(
        self,
        session_id: str,
        *,
        expires_in_seconds: int | None = None,
        template: str | None = None,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Mint a token for a stored session as the token endpoints would, whatever its status.

        ``extra_claims`` are merged last (to build odd tokens for verification tests).
        """
        with self._lock:
            session = self._sessions[session_id]
            session.settle(self._now_ms())
            tpl = self._templates[template] if template is not None else None
            claims = self._claims(session, tpl, expires_in_seconds)
            claims.update(extra_claims or {})
            return self._key.sign(claims)

    def _claims(
        self, session: _Session, template: _Template | None, expires_in: int | None
    ) -> dict[str, Any]:
        now = self.clock()
        iat = int(now)
        if template is not None:
            claims: dict[str, Any] = {
                "azp": self.authorized_party,
                "exp": iat + (expires_in or template.lifetime),
                "iat": iat,
                "iss": self.issuer,
                "jti": base64.b16encode(self._ids.randbytes(10)).decode().lower(),
                "nbf": iat - 10,
                "sub": session.user_id,
            }
            shortcodes = {
                "{{session.id}}": session.id,
                "{{user.id}}": session.user_id,
                "{{org.id}}": session.last_active_organization_id,
                "{{org.role}}": session.org_role if session.last_active_organization_id else None,
                "{{org.slug}}": session.org_slug,
            }
            for name, value in template.claims.items():
                if isinstance(value, str) and value in shortcodes:
                    claims[name] = shortcodes[value]
                else:
                    claims[name] = value
            return claims
        minutes = max(0, (int(now * 1000) - session.created_at) // 60_000)
        claims = {
            "azp": self.authorized_party,
            "exp": iat + (expires_in or _TOKEN_LIFETIME_S),
            "fva": [minutes, -1],
            "iat": iat,
            "iss": self.issuer,
            "nbf": iat - 10,
            "sid": session.id,
            "sts": session.status,
            "sub": session.user_id,
            "v": 2,
        }
        if session.last_active_organization_id:
            claims["o"] = {
                "id": session.last_active_organization_id,
                "rol": session.org_role,
                "slg": session.org_slug or session.last_active_organization_id,
            }
        return claims

    # ------------------------------------------------------------------ ways to talk to it

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx async transport that calls :attr:`app` in-process.

        Dropped connections and truncated bodies surface as the
        ``httpx.RemoteProtocolError`` a real network would raise.
        """
        from ._transport import FakeTransport

        return FakeTransport(self.app)

    def async_client(self, **kwargs: Any) -> AsyncClerk:
        """An ``AsyncClerk`` talking to this fake in-process (keywords go to ``AsyncClerk``)."""
        from clerk_sessions import AsyncClerk

        kwargs.setdefault("server_url", "http://fake.clerk.test/v1")
        return AsyncClerk(self.secret_key, transport=self.transport(), **kwargs)

    def client(self, **kwargs: Any) -> Clerk:
        """A sync ``Clerk`` talking to this fake in-process (keywords go to ``Clerk``)."""
        from clerk_sessions import Clerk  # type: ignore[attr-defined, unused-ignore]

        kwargs.setdefault("server_url", "http://fake.clerk.test/v1")
        return Clerk(self.secret_key, transport=self.transport(), **kwargs)

    @contextlib.contextmanager
    def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> Generator[str, None, None]:
        """Serve :attr:`app` with uvicorn on a loopback port in a background thread.

        Yields the base URL with the version prefix (``http://127.0.0.1:PORT/v1``), to
        pass as ``server_url``. The server accepts connections when this yields and is
        stopped (thread joined) on exit. Dropped connections really close the socket.

        With ``ssl_certfile`` (PEM, the certificate chain, and the key too unless
        ``ssl_keyfile`` names it) it serves HTTPS and the URL starts with ``https://``;
        the client must then trust the certificate's issuer (for the SDK's own client,
        through ``SSL_CERT_FILE``), and ``host`` must be a name the certificate carries.
        """
        from ._server import BackgroundServer

        server = BackgroundServer(
            self.app, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
        )
        server.start()
        try:
            yield _base_url(host, server.port, tls=ssl_certfile is not None)
        finally:
            server.stop()

    @contextlib.asynccontextmanager
    async def serve_async(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> AsyncGenerator[str, None]:
        """:meth:`serve` for async tests: starts and stops without blocking the event loop."""
        from ._server import BackgroundServer

        server = BackgroundServer(
            self.app, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
        )
        await anyio.to_thread.run_sync(server.start)
        try:
            yield _base_url(host, server.port, tls=ssl_certfile is not None)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(server.stop)

    # ------------------------------------------------------------------ the ASGI app

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        raw = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        # httpx's ASGITransport puts the query in raw_path; servers do not.
        raw_path = raw.split(b"?", 1)[0].decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        headers: dict[str, str] = {}
        authorization = None
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            if key == "authorization":
                authorization = value
            else:
                headers[key] = value.decode("latin-1")
        body = await _read_body(receive)
        authenticated = self._authorized(authorization)
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            record = RequestRecord(
                time=self.clock(),
                method=scope["method"],
                raw_path=raw_path,
                query=query,
                headers=headers,
                body=body,
                authenticated=authenticated,
                in_flight=self._in_flight,
            )
            self._requests.append(record)
        try:
            await self._serve_attempt(scope, receive, send, record)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _authorized(self, authorization: bytes | None) -> bool:
        if authorization is None:
            return False
        scheme, _, token = authorization.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(
            token.strip(), self._secret_bytes
        )

    async def _serve_attempt(
        self, scope: Scope, receive: Receive, send: Send, record: RequestRecord
    ) -> None:
        decision = self._injector.draw()
        record.latency_s = decision.latency_s
        if decision.latency_s:
            await anyio.sleep(decision.latency_s)
        fault: FaultName | None = decision.fault
        if fault == "drop_before":
            record.fault = fault
            await _drop(scope, receive)
            return
        if fault == "html_5xx" and decision.status is not None:
            record.fault, record.status = fault, decision.status
            record.validation = "exempt" if self.validator else None
            reason = _REASONS[decision.status]
            page = _HTML_ERROR % (decision.status, reason, decision.status, reason)
            await _send(send, decision.status, page, "text/html; charset=utf-8", ())
            return
        if fault == "error_5xx" and decision.status is not None:
            record.fault = fault
            answer = _error(
                decision.status,
                "internal_clerk_error",
                "Oops, an unexpected error occurred",
                "There was an internal error on our servers. "
                "We've been notified and are working on fixing it.",
            )
        else:
            answer = self._answer(record, scope.get("method", "GET"))
            if answer.status == 429 and record.fault is None:
                record.fault = "quota"
        record.state_changed = answer.state_changed
        payload = json.dumps(answer.payload, separators=(",", ":")).encode()
        if fault in ("drop_after", "truncate"):
            record.fault = fault
            record.validation = "exempt" if self.validator else None
            if fault == "drop_after":
                await _drop(scope, receive)
                return
            record.truncated_status = answer.status
            head = _head(answer.status, "application/json", answer.headers, len(payload))
            await send(head)
            await send(
                {
                    "type": "http.response.body",
                    "body": payload[: len(payload) // 2],
                    "more_body": True,
                }
            )
            await _drop(scope, receive, received=len(payload) // 2, expected=len(payload))
            return
        record.status = answer.status
        if self.validator is not None:
            violation = self.validator.check(
                api_version=record.headers.get("clerk-api-version"),
                method=record.method,
                raw_path=record.raw_path,
                template=record.operation,
                status=answer.status,
                content_type="application/json",
                body=payload,
                injected=fault == "error_5xx",
            )
            record.validation = "violation" if violation else "ok"
            record.violation = str(violation) if violation else None
        await _send(send, answer.status, payload, "application/json", answer.headers)

    def _answer(self, record: RequestRecord, method: str) -> _Answer:
        if not record.authenticated:
            return _error(
                401,
                "authentication_invalid",
                "Invalid authentication",
                "Unable to authenticate the request, you need to supply an active API key",
            )
        parts = record.raw_path.split("/")
        # "/v1/sessions/x" splits to ["", "v1", "sessions", "x"]; decode segment by segment.
        segments = [unquote(part) for part in parts[2:]] if parts[:2] == ["", "v1"] else []
        route = _match(segments)
        if route is not None and method in route[0]:
            record.operation = route[0][method]
        if self._quota is not None and record.operation != "/jwks":
            wait = self._quota.admit(self.secret_key, self.clock())
            if wait is not None:
                answer = _error(
                    429,
                    "too_many_requests",
                    "Too many requests, please try again later.",
                    "You have exceeded the maximum allowed number of requests. "
                    f"Please try again in {wait} seconds.",
                )
                return attrs.evolve(answer, headers=(("retry-after", str(wait)),))
        if route is None:
            return _error(
                404, "resource_not_found", "not found", f"{record.raw_path} is not a known path"
            )
        methods, params = route
        if record.operation is None:
            answer = _error(
                405,
                "method_not_allowed",
                "method not allowed",
                f"{method} is not allowed on {record.raw_path}",
            )
            return attrs.evolve(answer, headers=(("allow", ", ".join(sorted(methods))),))
        try:
            return self._dispatch(record, params)
        except _Problem as problem:
            return problem.answer

    def _dispatch(self, record: RequestRecord, params: list[str]) -> _Answer:
        operation = record.operation
        with self._lock:
            now = self._now_ms()
            if operation == "/jwks":
                return _Answer(200, self.jwks())
            if operation == "/sessions":
                if record.method == "GET":
                    return self._list(record.query, now)
                return self._create(record, now)
            session = self._sessions.get(params[0])
            if operation == "/sessions/{session_id}/verify":
                version = record.headers.get("clerk-api-version") or _NEWEST_VERSION
                if not _DATE.match(version) or version > _LAST_VERIFY_VERSION:
                    return _error(
                        410,
                        "endpoint_removed",
                        "This endpoint was removed",
                        "POST /sessions/{session_id}/verify was removed in API version "
                        "2025-04-10 "
                        f"(requested {version}); verify session tokens networklessly instead.",
                    )
            if session is None:
                if operation == "/sessions/{session_id}/refresh":
                    _refresh_body(_json_body(record.body, 400))
                    return _error(
                        401,
                        "session_invalid",
                        "Invalid session",
                        "The session cannot be refreshed.",
                    )
                if operation == "/sessions/{session_id}/verify":
                    _verify_body(_json_body(record.body, 400))
                if operation and operation.startswith("/sessions/{session_id}/tokens"):
                    _token_lifetime(_json_body(record.body, 422))
                return _not_found("session", params[0])
            session.settle(now)
            if operation == "/sessions/{session_id}":
                return _Answer(200, session.to_json())
            if operation == "/sessions/{session_id}/revoke":
                if session.status not in _TOKEN_STATUSES:
                    return _Answer(200, session.to_json())
                session.status = "revoked"
                session.updated_at = now
                return _Answer(200, session.to_json(), state_changed=True)
            if operation == "/sessions/{session_id}/verify":
                return self._verify(record, session)
            if operation == "/sessions/{session_id}/refresh":
                return self._refresh(record, session, now)
            expires_in = _token_lifetime(_json_body(record.body, 422))
            template = None
            if len(params) == 2:
                template = self._templates.get(params[1])
                if template is None:
                    return _not_found("JWT template", params[1])
            if session.status not in _TOKEN_STATUSES:
                return _not_found("active session", session.id)
            claims = self._claims(session, template, expires_in)
            return _Answer(200, {"object": "token", "jwt": self._key.sign(claims)})

    def _list(self, query: str, now: int) -> _Answer:
        params = dict(parse_qsl(query, keep_blank_values=True))
        status = params.get("status")
        if status is not None and status not in _QUERY_STATUSES:
            raise _param_problem(
                422,
                "form_param_value_invalid",
                "status",
                f"status must be one of {', '.join(sorted(_QUERY_STATUSES))}",
            )
        paginated = params.get("paginated")
        if paginated is not None and paginated not in ("true", "false"):
            raise _param_problem(
                422, "form_param_format_invalid", "paginated", "paginated must be true or false"
            )
        limit = _int_param(params, "limit", 10, 1, 500)
        offset = _int_param(params, "offset", 0, 0, None)
        matches: list[_Session] = []
        for session in self._sessions.values():
            session.settle(now)
            if params.get("client_id") is not None and session.client_id != params["client_id"]:
                continue
            if params.get("user_id") is not None and session.user_id != params["user_id"]:
                continue
            if status is not None and session.status != status:
                continue
            matches.append(session)
        matches.sort(key=lambda s: (s.created_at, s.seq), reverse=True)
        page = [session.to_json() for session in matches[offset : offset + limit]]
        if paginated == "true":
            return _Answer(200, {"data": page, "total_count": len(matches)})
        return _Answer(200, page)

    def _create(self, record: RequestRecord, now: int) -> _Answer:
        raw = _json_body(record.body, 422)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise _Problem(
                _error(
                    422,
                    "form_param_format_invalid",
                    "is invalid",
                    "the request body must be a JSON object",
                )
            )
        body = cast("dict[str, Any]", raw)
        user_id = body.get("user_id")
        if user_id is None:
            raise _param_problem(422, "form_param_missing", "user_id", "user_id must be included")
        if not isinstance(user_id, str):
            raise _param_problem(
                422, "form_param_format_invalid", "user_id", "user_id must be a string"
            )
        version = record.headers.get("clerk-api-version") or _NEWEST_VERSION
        org_id = body.get("active_organization_id") if version > _LAST_VERIFY_VERSION else None
        if (
            "active_organization_id" in body
            and version > _LAST_VERIFY_VERSION
            and not isinstance(org_id, str)
        ):
            raise _param_problem(
                422,
                "form_param_format_invalid",
                "active_organization_id",
                "active_organization_id must be a string",
            )
        if user_id not in self._users:
            return _not_found("user", user_id)
        created = self.add_session(user_id=user_id, active_organization_id=org_id)
        return _Answer(200, created, state_changed=True)

    def _verify(self, record: RequestRecord, session: _Session) -> _Answer:
        token = _verify_body(_json_body(record.body, 400))
        if token is not None:
            claims = self._key.decode(token)
            if (
                claims is None
                or claims.get("sid") != session.id
                or claims.get("exp", 0) < self.clock()
            ):
                return _error(
                    400,
                    "token_invalid",
                    "Invalid token",
                    "The token is not a valid token for this session.",
                )
        if session.status != "active":
            return _error(
                400,
                "session_not_active",
                "Session not active",
                f"The session is {session.status}, not active.",
            )
        return _Answer(200, session.to_json())

    def _refresh(self, record: RequestRecord, session: _Session, now: int) -> _Answer:
        body = _refresh_body(_json_body(record.body, 400))
        claims = self._key.decode(body["expired_token"])
        valid = (
            session.status == "active"
            and hmac.compare_digest(body["refresh_token"], session.refresh_token)
            and claims is not None
            and claims.get("sid") == session.id
        )
        if not valid:
            return _error(
                401, "session_invalid", "Invalid session", "The session cannot be refreshed."
            )
        session.last_active_at = now
        session.updated_at = now
        jwt = self._key.sign(self._claims(session, None, None))
        if body.get("format") == "cookie":
            cookies = [
                f"__session={jwt}; Path=/; Secure; SameSite=Lax",
                f"__client_uat={now // 1000}; Path=/; Max-Age=315360000; Secure; SameSite=Lax",
            ]
            return _Answer(200, {"object": "cookies", "cookies": cookies}, state_changed=True)
        return _Answer(200, {"object": "token", "jwt": jwt}, state_changed=True)


# ---------------------------------------------------------------------- request parsing


def _json_body(body: bytes, status: int) -> Any:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise _Problem(
            _error(
                status, "request_body_invalid", "is invalid", "The request body is not valid JSON."
            )
        ) from None


def _int_param(
    params: Mapping[str, str], name: str, default: int, low: int, high: int | None
) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _INTEGER.match(raw):
        raise _param_problem(422, "form_param_format_invalid", name, f"{name} must be an integer")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _param_problem(422, "form_param_value_invalid", name, f"{name} must be {bounds}")
    return value


def _token_lifetime(body: Any) -> int | None:
    if body is None:
        return None
    if not isinstance(body, dict):
        raise _Problem(
            _error(
                422,
                "form_param_format_invalid",
                "is invalid",
                "the request body must be a JSON object",
            )
        )
    value = cast("dict[str, Any]", body).get("expires_in_seconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _param_problem(
            422,
            "form_param_format_invalid",
            "expires_in_seconds",
            "expires_in_seconds must be an integer",
        )
    if not _MIN_TOKEN_S <= value <= _MAX_TOKEN_S:
        raise _param_problem(
            422,
            "form_param_value_invalid",
            "expires_in_seconds",
            f"expires_in_seconds must be between {_MIN_TOKEN_S} and {_MAX_TOKEN_S}",
        )
    return value


_REFRESH_FIELDS = {
    "expired_token": (str,),
    "refresh_token": (str,),
    "request_origin": (str,),
    "request_headers": (dict, type(None)),
    "format": (str, type(None)),
    "request_originating_ip": (str, type(None)),
}


def _refresh_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Problem(
            _error(
                400, "form_param_missing", "missing required parameter", "expired_token is required"
            )
        )
    fields = cast("dict[str, Any]", body)
    for name in fields:
        if name not in _REFRESH_FIELDS:
            raise _param_problem(
                400, "form_param_unknown", name, f"{name} is not a known parameter"
            )
    for name, types in _REFRESH_FIELDS.items():
        if name not in fields:
            if type(None) not in types:
                raise _param_problem(400, "form_param_missing", name, f"{name} must be included")
            continue
        if not isinstance(fields[name], types):
            raise _param_problem(
                400, "form_param_format_invalid", name, f"{name} has the wrong type"
            )
    if fields.get("format") not in (None, "token", "cookie"):
        raise _param_problem(
            400, "form_param_value_invalid", "format", "format must be token or cookie"
        )
    return fields


def _verify_body(body: Any) -> str | None:
    if body is None:
        return None
    if not isinstance(body, dict):
        raise _Problem(
            _error(
                400,
                "form_param_format_invalid",
                "is invalid",
                "the request body must be a JSON object",
            )
        )
    fields = cast("dict[str, Any]", body)
    for name in fields:
        if name != "token":
            raise _param_problem(
                400, "form_param_unknown", name, f"{name} is not a known parameter"
            )
    token = fields.get("token")
    if token is not None and not isinstance(token, str):
        raise _param_problem(400, "form_param_format_invalid", "token", "token must be a string")
    return token


# ---------------------------------------------------------------------- ASGI plumbing


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _head(
    status: int, content_type: str, extra: tuple[tuple[str, str], ...], length: int
) -> Message:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(length).encode())]
    headers.extend((name.encode(), value.encode()) for name, value in extra)
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _send(
    send: Send, status: int, body: bytes, content_type: str, extra: tuple[tuple[str, str], ...]
) -> None:
    await send(_head(status, content_type, extra, len(body)))
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _drop(
    scope: Scope, receive: Receive, *, received: int | None = None, expected: int | None = None
) -> None:
    """Close the connection without (the rest of) a response."""
    transport = scope.get("state", {}).get(TRANSPORT_STATE_KEY)
    if transport is None:
        if received is not None:
            message = (
                "peer closed connection without sending complete message body "
                f"(received {received} bytes, expected {expected})"
            )
        else:
            message = "Server disconnected without sending a response."
        raise ConnectionDropped(message, received=received, expected=expected)
    # close(), not abort(): a truncated body must reach the client before the FIN.
    transport.close()
    # Wait until the server has seen the connection go, so it does not answer a 500
    # on our behalf or log an incomplete response.
    with anyio.move_on_after(2):
        while (await receive())["type"] != "http.disconnect":
            pass
