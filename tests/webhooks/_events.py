"""Clerk-shaped webhook payloads and a fixed secret, shared by the webhook tests."""

from __future__ import annotations

import json
from typing import Any

from tests.core._support import session_json

# A secret in the Dashboard's shape: whsec_ and the base64 of 24 bytes.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_dGhlIG90aGVyIGVuZHBvaW50J3Mga2V5"
NOW = 1_700_000_000


def payload(kind: str = "session.created", **overrides: Any) -> dict[str, Any]:
    """A webhook payload as Clerk sends it (a session event unless told otherwise)."""
    event: dict[str, Any] = {
        "data": session_json("sess_1"),
        "object": "event",
        "type": kind,
        "timestamp": NOW * 1000 + 123,
        "instance_id": "ins_123",
        "event_attributes": {"http_request": {"client_ip": "192.0.2.1", "user_agent": "Mozilla"}},
    }
    event.update(overrides)
    return event


def body(kind: str = "session.created", **overrides: Any) -> bytes:
    """`payload` serialised as Svix sends it."""
    return json.dumps(payload(kind, **overrides)).encode()
