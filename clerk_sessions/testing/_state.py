"""The fake's stored world: users, clients, sessions and JWT templates, and their seeding.

Everything here is guarded by one re-entrant lock, which the request log shares, so a
request sees (and changes) the state as one step.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import attrs

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._records import RequestRecord

# Statuses the spec allows for a stored session, and those the list filter accepts.
SESSION_STATUSES = (
    *("active", "revoked", "ended", "expired", "removed", "abandoned", "replaced", "pending"),
)
QUERY_STATUSES = frozenset(SESSION_STATUSES) - {"pending"}
#: Statuses for which Clerk mints tokens and allows revoking.
TOKEN_STATUSES = frozenset(("active", "pending"))
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: The statuses whose arrival Clerk announces with a webhook event, and its type.
STATUS_EVENTS = {
    "revoked": "session.revoked",
    "ended": "session.ended",
    "removed": "session.removed",
}
_DAY_MS = 86_400_000


def random_base62(length: int) -> str:
    """A random (not seeded) base62 string, for secrets and key ids."""
    return "".join(secrets.choice(_BASE62) for _ in range(length))


@attrs.define(kw_only=True)
class StoredSession:
    """One session as the fake stores it, with what Clerk keeps beside the JSON."""

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
        """Apply expiry, which happens by itself on Clerk's side, as of ``now_ms``."""
        if self.status in TOKEN_STATUSES and now_ms >= self.expire_at:
            self.status = "expired"
            self.updated_at = self.expire_at

    def to_json(self) -> dict[str, Any]:
        """The session as ``GET /sessions/{id}`` answers it."""
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


class SessionOptions(TypedDict, total=False):
    """The options of a seeded session; ``FakeClerk.add_session`` says how each defaults."""

    user_id: str | None
    client_id: str | None
    status: str
    session_id: str | None
    created_at: int | None
    expire_at: int | None
    active_organization_id: str | None
    org_role: str
    org_slug: str | None
    actor: Mapping[str, Any] | None
    tasks: list[str] | None
    latest_activity: Mapping[str, Any] | None


@attrs.frozen
class Template:
    """A JWT template: extra claims (with shortcodes) and a default lifetime in seconds."""

    name: str
    claims: Mapping[str, Any]
    lifetime: int


class FakeState:
    """The stored users, clients, sessions and templates, with seeded ids.

    Args:
        clock: unix time in seconds.
        seed: seeds the generated ids (and the ``jti`` of template tokens).
    """

    def __init__(self, *, clock: Callable[[], float], seed: int) -> None:
        self.clock = clock
        self.seed = seed
        self.lock = threading.RLock()
        self.users: dict[str, dict[str, Any]] = {}
        self.clients: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, StoredSession] = {}
        self.templates: dict[str, Template] = {}
        self._ids = random.Random(seed)
        self._seq = 0
        #: Called (under the lock) with an event type and the session, on each change
        #: Clerk sends a webhook for: ``session.created`` and the `STATUS_EVENTS`.
        self.on_session_event: Callable[[str, StoredSession], None] | None = None
        #: The API request whose handler is running (set by the routes), for the
        #: ``event_attributes`` of the events it causes; None while seeding.
        self.current_request: RequestRecord | None = None

    def now_ms(self) -> int:
        """The clock in unix milliseconds, the unit of every stored timestamp."""
        return int(self.clock() * 1000)

    def new_id(self, prefix: str) -> str:
        """A seeded Clerk-style id: ``prefix_`` and 27 base62 characters."""
        return prefix + "_" + "".join(self._ids.choice(_BASE62) for _ in range(27))

    def random_bytes(self, count: int) -> bytes:
        """Seeded random bytes, drawn from the same sequence as the ids."""
        return self._ids.randbytes(count)

    def add_user(self, user_id: str | None) -> str:
        """Store a user unless known; return its id."""
        with self.lock:
            user_id = user_id or self.new_id("user")
            self.users.setdefault(user_id, {"id": user_id, "created_at": self.now_ms()})
            return user_id

    def add_client(self, user_id: str | None, client_id: str | None) -> str:
        """Store a client, and its user when given; return its id."""
        with self.lock:
            if user_id is not None:
                self.add_user(user_id)
            client_id = client_id or self.new_id("client")
            now = self.now_ms()
            self.clients[client_id] = {"id": client_id, "user_id": user_id, "created_at": now}
            return client_id

    def add_session(self, **options: Unpack[SessionOptions]) -> StoredSession:
        """Store a session (see ``FakeClerk.add_session`` for the options) and return it."""
        status = options.get("status", "active")
        if status not in SESSION_STATUSES:
            known = ", ".join(SESSION_STATUSES)
            raise ValueError(f"unknown session status {status!r}; one of {known}")
        user_id, client_id = options.get("user_id"), options.get("client_id")
        created_at, expire_at = options.get("created_at"), options.get("expire_at")
        tasks, actor = options.get("tasks"), options.get("actor")
        latest_activity = options.get("latest_activity")
        with self.lock:
            user_id = self.add_user(user_id)
            if client_id is None or client_id not in self.clients:
                client_id = self.add_client(user_id, client_id)
            now = self.now_ms()
            created = now if created_at is None else created_at
            if tasks is None and status == "pending":
                tasks = ["choose-organization"]
            session_id = options.get("session_id") or self.new_id("sess")
            self._seq += 1
            session = StoredSession(
                id=session_id,
                user_id=user_id,
                client_id=client_id,
                status=status,
                created_at=created,
                updated_at=created,
                last_active_at=created,
                expire_at=created + 7 * _DAY_MS if expire_at is None else expire_at,
                abandon_at=created + 30 * _DAY_MS,
                last_active_organization_id=options.get("active_organization_id"),
                org_role=options.get("org_role", "admin"),
                org_slug=options.get("org_slug"),
                actor=dict(actor) if actor is not None else None,
                tasks=[{"key": key} for key in tasks] if tasks is not None else None,
                latest_activity=dict(latest_activity) if latest_activity else self._activity(),
                refresh_token=self.new_id("rt"),
                seq=self._seq,
            )
            self.sessions[session_id] = session
            self._announce("session.created", session)
            return session

    def _activity(self) -> dict[str, Any]:
        return {
            "object": "session_activity",
            "id": self.new_id("sess_activity"),
            "device_type": "Macintosh",
            "is_mobile": False,
            "browser_name": "Chrome",
            "browser_version": "126.0.0.0",
            "ip_address": "127.0.0.1",
            "city": "Testville",
            "country": "US",
        }

    def add_template(self, name: str, claims: Mapping[str, Any] | None, lifetime: int) -> None:
        """Store a JWT template, replacing one of the same name."""
        if lifetime < 1:
            raise ValueError("a template's lifetime is at least 1 second")
        with self.lock:
            self.templates[name] = Template(name, dict(claims or {}), lifetime)

    def set_status(self, session_id: str, status: str) -> StoredSession:
        """Move a stored session to ``status`` (``KeyError`` if unknown)."""
        if status not in SESSION_STATUSES:
            raise ValueError(f"unknown session status {status!r}")
        with self.lock:
            session = self.sessions[session_id]
            self.transition(session, status, self.now_ms())
            return session

    def transition(self, session: StoredSession, status: str, now_ms: int) -> None:
        """Move ``session`` to ``status`` as of ``now_ms``, announcing the change."""
        with self.lock:
            changed = session.status != status
            session.status = status
            session.updated_at = now_ms
            if changed and status in STATUS_EVENTS:
                self._announce(STATUS_EVENTS[status], session)

    def _announce(self, event_type: str, session: StoredSession) -> None:
        if self.on_session_event is not None:
            self.on_session_event(event_type, session)

    def settled(self, session_id: str) -> StoredSession:
        """A stored session with expiry applied (``KeyError`` if unknown)."""
        with self.lock:
            session = self.sessions[session_id]
            session.settle(self.now_ms())
            return session

    def newest_first(self, now_ms: int) -> list[StoredSession]:
        """Every stored session with expiry applied, newest first (then creation order)."""
        with self.lock:
            ordered = sorted(
                self.sessions.values(), key=lambda s: (s.created_at, s.seq), reverse=True
            )
            for session in ordered:
                session.settle(now_ms)
            return ordered

    def reset(self) -> None:
        """Forget everything and restart the seeded ids."""
        with self.lock:
            self.users.clear()
            self.clients.clear()
            self.sessions.clear()
            self.templates.clear()
            self._ids = random.Random(self.seed)
            self._seq = 0
