"""clerk_sessions.webhooks against other implementations of the same scheme.

- Svix's own library (``svix.webhooks.Webhook``, a dev dependency only): what it signs
  we accept, what we sign it accepts, what it refuses we refuse.
- The scheme written out from its description (an HMAC-SHA256 of ``id.timestamp.body``
  keyed by the base64 part of the secret): svix's library is now built on
  standardwebhooks too, so this one shares no code with either.

Svix's library checks timestamps against the wall clock, so these tests do too, and keep
every generated timestamp a minute away from the edges of the five-minute window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from svix.webhooks import Webhook

from clerk_sessions import errors
from clerk_sessions.webhooks import sign_webhook, verify_webhook

pytestmark = pytest.mark.timeout(60)

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
events = st.fixed_dictionaries(
    {
        "type": st.text(max_size=30).filter(lambda t: not t.startswith("session.")),
        "data": st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    },
    optional={"object": st.just("event"), "instance_id": st.text(max_size=10)},
)
secrets_ = st.binary(min_size=1, max_size=64).map(
    lambda key: "whsec_" + base64.b64encode(key).decode()
)
msg_ids = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00\r\n"), min_size=1, max_size=40
)
# Seconds before (positive) or after now, a minute clear of the edges of the window.
in_window = st.integers(-240, 240)
out_of_window = st.integers(360, 10**7) | st.integers(-(10**7), -360)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def svix_headers(secret: str, msg_id: str, at: int, data: str) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(at, tz=UTC), data)
    return {"svix-id": msg_id, "svix-timestamp": str(at), "svix-signature": signature}


def svix_accepts(secret: str, data: bytes | str, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(data, headers)
    except Exception:  # svix raises its own error, or a bare one from deep inside
        return False
    return True


def we_accept(secret: str, data: bytes | str, headers: dict[str, str]) -> bool:
    try:
        verify_webhook(data, headers, secret=secret)
    except errors.WebhookVerificationError:
        return False
    return True


def from_the_description(secret: str, msg_id: str, at: int, data: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{at}.".encode() + data, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@SETTINGS
@given(secret=secrets_, msg_id=msg_ids, event=events, offset=in_window)
def test_what_svix_signs_we_accept(
    secret: str, msg_id: str, event: dict[str, Any], offset: int
) -> None:
    data = json.dumps(event)
    headers = svix_headers(secret, msg_id, int(time.time()) - offset, data)
    verified = verify_webhook(data.encode(), headers, secret=secret)
    assert (verified.id, verified.type, verified.raw) == (msg_id, event["type"], event)


@SETTINGS
@given(secret=secrets_, msg_id=msg_ids, data=st.text(max_size=200), offset=in_window)
def test_what_we_sign_svix_accepts(secret: str, msg_id: str, data: str, offset: int) -> None:
    headers = sign_webhook(data, secret=secret, msg_id=msg_id, timestamp=time.time() - offset)
    assert svix_accepts(secret, data.encode(), headers)


@SETTINGS
@given(
    secret=secrets_,
    msg_id=msg_ids,
    data=st.binary(max_size=200),
    at=st.integers(0, 253_402_300_799),
)
def test_our_signature_is_the_one_the_scheme_describes(
    secret: str, msg_id: str, data: bytes, at: int
) -> None:
    assume(_is_utf8(data))
    headers = sign_webhook(data, secret=secret, msg_id=msg_id, timestamp=at)
    assert headers == {
        "svix-id": msg_id,
        "svix-timestamp": str(at),
        "svix-signature": from_the_description(secret, msg_id, at, data),
    }


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# Ways to spoil a delivery that svix signed: each takes (headers, body) and gives both back.
def _other_body(headers: dict[str, str], data: bytes, extra: bytes) -> tuple[dict[str, str], bytes]:
    return headers, data + extra


def _cut_body(headers: dict[str, str], data: bytes, _: bytes) -> tuple[dict[str, str], bytes]:
    return headers, data[: len(data) // 2]


def _header_replaced(name: str) -> Any:
    def spoil(headers: dict[str, str], data: bytes, value: bytes) -> tuple[dict[str, str], bytes]:
        return {**headers, name: value.decode("latin-1")}, data

    return spoil


def _header_dropped(name: str) -> Any:
    def spoil(headers: dict[str, str], data: bytes, _: bytes) -> tuple[dict[str, str], bytes]:
        return {k: v for k, v in headers.items() if k != name}, data

    return spoil


def _secret_of_another(
    headers: dict[str, str], data: bytes, key: bytes
) -> tuple[dict[str, str], bytes]:
    other = "whsec_" + base64.b64encode(key or b"k").decode()
    resigned = svix_headers(
        other, headers["svix-id"], int(headers["svix-timestamp"]), data.decode()
    )
    return resigned, data


SPOILERS = {
    "other-body": _other_body,
    "cut-body": _cut_body,
    "other-id": _header_replaced("svix-id"),
    "other-timestamp": _header_replaced("svix-timestamp"),
    "other-signature": _header_replaced("svix-signature"),
    "no-id": _header_dropped("svix-id"),
    "no-timestamp": _header_dropped("svix-timestamp"),
    "no-signature": _header_dropped("svix-signature"),
    "other-secret": _secret_of_another,
}


@SETTINGS
@given(
    secret=secrets_,
    msg_id=msg_ids,
    event=events,
    offset=in_window | out_of_window,
    spoil=st.sampled_from(sorted(SPOILERS)) | st.none(),
    extra=st.binary(max_size=40),
)
def test_what_svix_refuses_we_refuse(
    secret: str,
    msg_id: str,
    event: dict[str, Any],
    offset: int,
    spoil: str | None,
    extra: bytes,
) -> None:
    data = json.dumps(event).encode()
    headers = svix_headers(secret, msg_id, int(time.time()) - offset, data.decode())
    if spoil is not None:
        headers, data = SPOILERS[spoil](headers, data, extra)
    if not svix_accepts(secret, data, headers):
        assert not we_accept(secret, data, headers)


@SETTINGS
@given(
    secret=secrets_,
    data=st.binary(max_size=300),
    headers=st.dictionaries(
        st.sampled_from(["svix-id", "svix-timestamp", "svix-signature", "webhook-id", "x"]),
        st.text(max_size=60),
    ),
)
def test_arbitrary_deliveries_svix_refuses_we_refuse_too(
    secret: str, data: bytes, headers: dict[str, str]
) -> None:
    if not svix_accepts(secret, data, headers):
        assert not we_accept(secret, data, headers)
