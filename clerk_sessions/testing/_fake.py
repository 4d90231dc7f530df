"""FakeClerk: an in-memory Clerk Backend API for the sessions paths and ``/jwks``.

The facade over four parts, one module each: the stored world and its seeding
(``_state``), token minting (``_tokens``), the endpoints as a table from path template
to handler (``_routes``, which lists the choices made where the spec is silent), and the
ASGI app that logs attempts and injects faults and quota (``_asgi``).

Sessions expire lazily: an ``active``/``pending`` session whose ``expire_at`` has passed
on the injected clock reads as ``expired``. The quota counts requests with the right
secret key (``/jwks`` excluded) in a sliding window; 429s are not counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import ASGIApp

from ._asgi import FakeApp
from ._faults import FaultConfig, Quota
from ._records import RequestRecord
from ._state import FakeState, StoredSession, random_base62
from ._tokens import TokenMinter
from ._validation import ResponseValidator, resolve_validation_source
from ._webhooks import (
    DEFAULT_RETRY_DELAYS,
    OutgoingEvent,
    WebhookDelivery,
    WebhookSender,
    new_webhook_secret,
)

if TYPE_CHECKING:
    import httpx2

    from clerk_sessions import (  # type: ignore[attr-defined, unused-ignore]
        AsyncClerk,
        Clerk,
    )


def _base_url(host: str, port: int, *, tls: bool) -> str:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"{'https' if tls else 'http'}://{authority}/v1"


class FakeClerk:
    """An in-memory, stateful Clerk Backend API (sessions and ``/jwks``) for tests.

    Seed state with :meth:`add_user`, :meth:`add_client`, :meth:`add_session` and
    :meth:`add_template`; inspect it with :attr:`sessions`, :meth:`get_session` and the
    attempt log :attr:`requests`; talk to it in-process with :meth:`async_client`,
    :meth:`client` or :meth:`transport`, or on a loopback port with :meth:`serve`.

    With a ``webhook_url``, every session change Clerk announces (``session.created``,
    ``session.revoked``, ``session.ended``, ``session.removed``; through the API or by
    seeding) is POSTed there as Clerk would send it, signed with :attr:`webhook_secret`,
    from a background thread; :attr:`webhook_deliveries` lists every attempt and
    :meth:`wait_for_webhooks` waits for them. :meth:`close` (or leaving a ``with``
    block) stops that thread.

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
        webhook_url: where to POST session events (None: nowhere). Needs the
            ``webhooks`` extra.
        webhook_secret: their signing secret (``whsec_<random>`` when None).
        webhook_retry_delays: seconds before each retry of a delivery that got a non-2XX
            answer or none; one attempt more than there are delays.
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
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        self.secret_key = secret_key or "sk_test_" + random_base62(40)
        self.webhook_url = webhook_url
        """Where session events are POSTed (None: nowhere)."""
        self.webhook_secret = webhook_secret or new_webhook_secret()
        """The events' signing secret: the receiver's ``CLERK_WEBHOOK_SIGNING_SECRET``."""
        self.instance_id = "ins_" + random_base62(27)
        """The ``instance_id`` of the events."""
        self.clock: Callable[[], float] = clock or time.time
        self.seed = seed
        self.faults = faults
        self.quota = quota
        self.issuer = issuer
        self.authorized_party = authorized_party
        source = resolve_validation_source(validate_responses)
        self.validator: ResponseValidator | None = ResponseValidator(source) if source else None
        self._state = FakeState(clock=self.clock, seed=seed)
        self._tokens = TokenMinter(
            clock=self.clock,
            issuer=issuer,
            authorized_party=authorized_party,
            random_bytes=self._state.random_bytes,
        )
        self._app = FakeApp(
            state=self._state,
            tokens=self._tokens,
            secret_key=self.secret_key,
            clock=self.clock,
            faults=faults,
            quota=quota,
            validator=self.validator,
        )
        self.app: ASGIApp = self._app
        """The ASGI application (a plain ASGI 3 callable; mount it anywhere)."""
        self._webhooks: WebhookSender | None = None
        if webhook_url is not None:
            self._webhooks = WebhookSender(
                webhook_url,
                self.webhook_secret,
                retry_delays=webhook_retry_delays,
                clock=self.clock,
            )
            self._state.on_session_event = self._session_event

    # ------------------------------------------------------------------ seeding state

    def add_user(self, user_id: str | None = None) -> str:
        """Create a user (``user_...`` id unless given) and return its id."""
        return self._state.add_user(user_id)

    def add_client(self, user_id: str | None = None, *, client_id: str | None = None) -> str:
        """Create a client (a browser or device), optionally for a user; return its id."""
        return self._state.add_client(user_id, client_id)

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
        return self._state.add_session(
            user_id=user_id,
            client_id=client_id,
            status=status,
            session_id=session_id,
            created_at=created_at,
            expire_at=expire_at,
            active_organization_id=active_organization_id,
            org_role=org_role,
            org_slug=org_slug,
            actor=actor,
            tasks=tasks,
            latest_activity=latest_activity,
        ).to_json()

    def add_template(
        self, name: str, *, claims: Mapping[str, Any] | None = None, lifetime: int = 60
    ) -> None:
        """Register a JWT template for ``POST /sessions/{id}/tokens/{name}``."""
        self._state.add_template(name, claims, lifetime)

    def set_session_status(self, session_id: str, status: str) -> dict[str, Any]:
        """Move a session to ``status`` (e.g. ``ended`` when the user signs out)."""
        return self._state.set_status(session_id, status).to_json()

    def refresh_token(self, session_id: str) -> str:
        """The session's refresh token (what FAPI's handshake sets as ``__refresh``)."""
        with self._state.lock:
            return self._state.sessions[session_id].refresh_token

    def rotate_signing_key(self) -> str:
        """Replace the signing key (new ``kid``); tokens signed before no longer verify."""
        with self._state.lock:
            return self._tokens.rotate()

    def reset(self) -> None:
        """Forget all state, the attempt log, quota windows and counters; restart seeds.

        The secret key and the signing key stay. The webhook delivery log is emptied too
        (attempts still in flight are recorded when they end).
        """
        with self._state.lock:
            self._state.reset()
            self._app.reset()
            if self._webhooks is not None:
                self._webhooks.forget_deliveries()

    # ------------------------------------------------------------------ inspection

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """Every stored session as JSON, newest first."""
        with self._state.lock:
            return [session.to_json() for session in self._state.newest_first(self._state.now_ms())]

    def get_session(self, session_id: str) -> dict[str, Any]:
        """One stored session as JSON (``KeyError`` if unknown)."""
        with self._state.lock:
            return self._state.settled(session_id).to_json()

    @property
    def users(self) -> list[str]:
        """The ids of the stored users."""
        with self._state.lock:
            return list(self._state.users)

    @property
    def clients(self) -> list[dict[str, Any]]:
        """The stored clients (``id``, ``user_id``, ``created_at``)."""
        with self._state.lock:
            return [dict(client) for client in self._state.clients.values()]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every attempt the fake saw, in arrival order (records of attempts in flight included)."""
        with self._state.lock:
            return list(self._app.requests)

    @property
    def in_flight(self) -> int:
        """Attempts being handled right now."""
        return self._app.in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most attempts ever handled at once (since creation or :meth:`reset`)."""
        return self._app.peak_in_flight

    # ------------------------------------------------------------------ keys and tokens

    @property
    def kid(self) -> str:
        """The ``kid`` of the current signing key."""
        return self._tokens.key.kid

    @property
    def public_key_pem(self) -> str:
        """The signing key's public half as PEM (for ``verify_token(jwt_key=...)``)."""
        return self._tokens.key.public_key_pem()

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set that ``GET /jwks`` answers."""
        return self._tokens.jwks()

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
        with self._state.lock:
            session = self._state.settled(session_id)
            tpl = self._state.templates[template] if template is not None else None
            return self._tokens.mint(session, tpl, expires_in_seconds, extra_claims)

    # ------------------------------------------------------------------ webhooks

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every attempt to deliver a session event, in the order the attempts ended."""
        return [] if self._webhooks is None else self._webhooks.deliveries

    def wait_for_webhooks(self, timeout: float = 10.0) -> None:
        """Block until every session event so far was delivered or given up on.

        Raises `TimeoutError` when some are still pending after ``timeout`` seconds. In
        async code use :meth:`wait_for_webhooks_async`: a receiver served by the same
        event loop could not answer while this blocks it.
        """
        if self._webhooks is not None:
            self._webhooks.wait(timeout)

    async def wait_for_webhooks_async(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """:meth:`wait_for_webhooks` without blocking the event loop (asyncio or trio)."""
        if self._webhooks is not None:
            await self._webhooks.wait_async(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Wait up to ``timeout`` seconds for pending webhook deliveries, then stop their
        thread. The fake stays usable: a later event starts the thread again."""
        if self._webhooks is not None:
            self._webhooks.close(timeout)

    def __enter__(self) -> FakeClerk:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # A failure in the block must not be hidden by one about deliveries it cut short.
        with contextlib.suppress(TimeoutError):
            self.close()

    def _session_event(self, event_type: str, session: StoredSession) -> None:
        # Called under the state's lock, so events are queued in the order of the changes.
        assert self._webhooks is not None
        request = self._state.current_request
        http_request = {"client_ip": "", "user_agent": ""}
        if request is not None:
            http_request = {
                "client_ip": "127.0.0.1",
                "user_agent": request.headers.get("user-agent", ""),
            }
        payload = {
            "data": session.to_json(),
            "object": "event",
            "type": event_type,
            "timestamp": self._state.now_ms(),
            "instance_id": self.instance_id,
            "event_attributes": {"http_request": http_request},
        }
        self._webhooks.submit(
            OutgoingEvent(
                event_id="msg_" + random_base62(27),
                type=event_type,
                session_id=session.id,
                body=json.dumps(payload, separators=(",", ":")).encode(),
            )
        )

    # ------------------------------------------------------------------ ways to talk to it

    def transport(self) -> httpx2.AsyncBaseTransport:
        """An ``httpx2`` async transport that calls :attr:`app` in-process.

        Dropped connections and truncated bodies surface as the
        ``httpx2.RemoteProtocolError`` a real network would raise.
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
