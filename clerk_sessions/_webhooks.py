"""Clerk's webhook deliveries, verified and signed as Svix does, on ``standardwebhooks``.

What ``standardwebhooks`` does here, and what this module does itself:

- ``Webhook(secret)`` decodes the ``whsec_`` secret and ``Webhook.sign`` computes the
  ``v1,<base64>`` HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``: both are used as they are.
- ``Webhook.verify`` is not used. It reads only the ``webhook-*`` header names (Clerk
  sends ``svix-*``), checks the timestamp against the wall clock with a fixed five
  minutes, and hashes a body of any size. Here both header names are read, the clock
  and the tolerance are parameters, the size is capped before any HMAC, and each
  signature entry is compared in constant time (`hmac.compare_digest`), as it does.
- ``sign`` gets the body as text: before release 1.3 it takes only ``str`` (and would
  sign the ``repr`` of bytes). A body that is not UTF-8 cannot be Clerk's JSON (JSON is
  UTF-8, RFC 8259), so it is refused as ``payload`` before any HMAC.

Checks run cheapest first and the first failure wins: the secret (a
`ConfigurationError`), the headers (``missing_headers``), the size (``payload``), the
timestamp (``timestamp``), the signature (``signature``), the JSON (``payload``).
``clerk_sessions.webhooks`` is the public face of this module.
"""

from __future__ import annotations

import hmac
import json
import math
import os
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import attrs

from clerk_sessions._errors import (
    ConfigurationError,
    ResponseValidationError,
    WebhookVerificationError,
)
from clerk_sessions.models import Session

if TYPE_CHECKING:
    from standardwebhooks import Webhook

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "SECRET_ENV",
    "WebhookEvent",
    "sign_webhook",
    "verify_webhook",
]

#: Deliveries with a larger body are refused (``payload``) before any HMAC is computed.
#: Clerk's session events are about 1 KiB.
MAX_WEBHOOK_BYTES = 1 << 20
#: The environment variable that holds the endpoint's signing secret.
SECRET_ENV = "CLERK_WEBHOOK_SIGNING_SECRET"

_EXTRA_HINT = 'webhooks need the webhooks extra: pip install "clerk-sessions[webhooks]"'
# Clerk's session event types. Their data must be a session; a session.* type this SDK
# does not know yet is returned with session=None when its data is something else.
_SESSION_EVENTS = frozenset(
    {"session.created", "session.ended", "session.pending", "session.removed", "session.revoked"}
)
# Svix's names first, as Svix's own library reads them, each falling back on its own.
_ID, _TIMESTAMP, _SIGNATURE = (
    ("svix-id", "webhook-id"),
    ("svix-timestamp", "webhook-timestamp"),
    ("svix-signature", "webhook-signature"),
)
_HEADER_NAMES = frozenset(_ID + _TIMESTAMP + _SIGNATURE)
# Unix seconds as Svix writes them. Twelve digits reach the year 33658, past what a
# datetime holds, which the conversion below catches.
_SECONDS = re.compile(r"[0-9]{1,12}")
# The base64 part, then its padding (ignored: it is recomputed, see `_signer`).
_SECRET = re.compile(r"(?:whsec_)?([A-Za-z0-9+/]+)=*")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified webhook event, as Clerk sent it.

    ``id`` is the delivery's ``svix-id`` (the same on every retry of one event: use it
    to ignore duplicates). ``timestamp`` is when the event happened (the payload's
    ``timestamp``, else the delivery's signing time), an aware UTC datetime. ``data``
    is the payload's ``data`` object and ``raw`` the whole payload. ``session`` is
    ``data`` decoded as a `Session` (by the decoder the API's answers go through) for
    ``session.*`` events, else None.
    """

    id: str
    type: str
    timestamp: datetime
    instance_id: str | None
    data: dict[str, Any] = attrs.field(hash=False)
    raw: dict[str, Any] = attrs.field(hash=False, repr=False)
    session: Session | None = None


def _fail(reason: str, message: str) -> WebhookVerificationError:
    return WebhookVerificationError(message, reason=reason)


def _library_webhook() -> type[Webhook]:
    try:
        from standardwebhooks import Webhook
    except ImportError as exc:
        raise ImportError(_EXTRA_HINT) from exc
    return Webhook


def _signer(secret: str | None) -> Webhook:
    """The signer for ``secret`` (else ``$CLERK_WEBHOOK_SIGNING_SECRET``); no message
    says more of the secret than where it came from."""
    source = "secret"
    if secret is None:
        secret = os.environ.get(SECRET_ENV) or None
        source = SECRET_ENV
        if secret is None:
            raise ConfigurationError(
                f"no webhook signing secret: set {SECRET_ENV} (or pass secret=) to the "
                "endpoint's signing secret, whsec_..., shown on the endpoint's page under "
                "Webhooks in the Clerk Dashboard"
            )
    if not isinstance(secret, str):
        raise TypeError(f"secret must be a str (whsec_...), got {type(secret).__name__}")
    match = _SECRET.fullmatch(secret)
    if match is None or len(match.group(1)) % 4 == 1:
        raise ConfigurationError(
            f"{source} is not a webhook signing secret: expected whsec_ followed by base64, "
            "as the Clerk Dashboard shows it (look for quotes or spaces around the value)"
        )
    key = match.group(1)
    # Padded here, so that every supported release of standardwebhooks decodes it alike.
    return _library_webhook()("whsec_" + key + "=" * (-len(key) % 4))


def _body_bytes(body: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(body, str):
        # A lone surrogate cannot be encoded, nor have been sent: it cannot verify.
        return body.encode("utf-8", "surrogatepass")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(
        "body must be the raw request body, bytes or str, exactly as received "
        f"(got {type(body).__name__}); parsing and re-serialising it changes the bytes "
        "that were signed"
    )


def _text(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _delivery_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    """The delivery's id, timestamp and signatures, or ``missing_headers``."""
    if not isinstance(headers, Mapping):
        raise TypeError(
            f"headers must be a mapping of header names to values, got {type(headers).__name__}"
        )
    found: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower() if isinstance(name, str) else None
        if key in _HEADER_NAMES and isinstance(value, str):
            found[key] = value
    values: list[str] = []
    missing: list[str] = []
    for svix_name, standard_name in (_ID, _TIMESTAMP, _SIGNATURE):
        picked = found.get(svix_name) if svix_name in found else found.get(standard_name)
        if not picked:
            missing.append(svix_name)
        values.append(picked or "")
    if missing:
        names = " and ".join([", ".join(missing[:-1]), missing[-1]] if missing[:-1] else missing)
        raise _fail(
            "missing_headers",
            f"the request lacks {names} (or the webhook-* equivalents): it is not a "
            "webhook delivery, or a proxy dropped headers on the way",
        )
    return values[0], values[1], values[2]


def _unix_now(now: datetime | float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime (or unix seconds)")
        return now.timestamp()
    return float(now)


def _signed_at(stamp: str, *, tolerance_s: float, now: datetime | float | None) -> datetime:
    """The delivery's signing time, or ``timestamp`` when unreadable or out of the window."""
    if not _SECONDS.fullmatch(stamp):
        raise _fail("timestamp", "the delivery's timestamp header is not unix time in seconds")
    seconds = int(stamp)
    age = _unix_now(now) - seconds
    if age > tolerance_s:
        raise _fail(
            "timestamp",
            f"the delivery was signed {age:.0f} s ago, beyond the tolerance of "
            f"{tolerance_s:g} s: a replayed delivery, or this machine's clock is wrong",
        )
    if -age > tolerance_s:
        raise _fail(
            "timestamp",
            f"the delivery is signed {-age:.0f} s in the future, beyond the tolerance of "
            f"{tolerance_s:g} s: this machine's clock (or the sender's) is wrong",
        )
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        # Only a tolerance of centuries lets such a time through.
        raise _fail("timestamp", "the delivery's timestamp is out of range") from None


def verify_webhook(
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    secret: str | None = None,
    tolerance_s: float = 300,
    now: datetime | float | None = None,
) -> WebhookEvent:
    """Verify a webhook delivery from Clerk and return its event.

    :param body: the request body exactly as received (bytes, or str), before any
        parsing: re-serialised JSON has other bytes, and another signature.
    :param headers: the request's headers, any mapping (Starlette's, Django's
        ``request.headers``, httpx's, a dict); names are matched case-insensitively.
        Svix's ``svix-id``/``svix-timestamp``/``svix-signature`` are read, else the
        Standard Webhooks' ``webhook-*`` names.
    :param secret: the endpoint's signing secret (``whsec_...``); default
        ``$CLERK_WEBHOOK_SIGNING_SECRET``. None at all is a `ConfigurationError`.
    :param tolerance_s: how far the delivery's timestamp may be from ``now``, either way.
    :param now: the time to check against (aware datetime or unix seconds); default the
        wall clock.

    The delivery passes when any entry of the signature header matches (Svix sends
    several while a secret rotates), compared in constant time. Otherwise raises
    `WebhookVerificationError` with ``reason``: ``missing_headers``, ``timestamp``,
    ``signature`` or ``payload`` (a body over `MAX_WEBHOOK_BYTES` or not UTF-8,
    refused before any HMAC; or signed but not a JSON object with a string ``type``
    and an object ``data``). Event types this SDK does not know are returned, never
    refused.
    """
    signer = _signer(secret)
    if isinstance(tolerance_s, bool) or not tolerance_s >= 0:
        raise ValueError(f"tolerance_s must be a number of seconds >= 0, got {tolerance_s!r}")
    payload = _body_bytes(body)
    msg_id, stamp, signatures = _delivery_headers(headers)
    if len(payload) > MAX_WEBHOOK_BYTES:
        raise _fail(
            "payload",
            f"the body is {len(payload)} bytes, over the limit of {MAX_WEBHOOK_BYTES} "
            "(1 MiB); refused before checking its signature",
        )
    signed_at = _signed_at(stamp, tolerance_s=tolerance_s, now=now)
    text = _text(payload)
    if text is None:
        raise _fail(
            "payload",
            "the body is not UTF-8, so it cannot be Clerk's JSON; refused before checking "
            "its signature",
        )
    try:
        expected = signer.sign(msg_id, signed_at, text).encode()
    except UnicodeEncodeError:
        expected = None  # an id with a lone surrogate: nobody can have signed it
    if expected is None or not any(
        hmac.compare_digest(expected, entry.encode("utf-8", "surrogatepass"))
        for entry in signatures.split(" ")
    ):
        raise _fail(
            "signature",
            "no signature of the delivery matches its body and the signing secret: a "
            "forged or altered delivery, or the wrong secret (each endpoint has its own)",
        )
    return _event(msg_id, signed_at, text)


def _event(msg_id: str, signed_at: datetime, text: str) -> WebhookEvent:
    try:
        decoded: object = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # RecursionError: nesting deeper than the interpreter's recursion limit.
        raise _fail("payload", f"the signed body is not JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise _fail("payload", "the signed body is JSON, but not an object")
    raw = cast("dict[str, Any]", decoded)
    kind, data = raw.get("type"), raw.get("data")
    if not isinstance(kind, str):
        raise _fail("payload", 'the signed body has no string "type": not a Clerk event')
    if not isinstance(data, dict):
        raise _fail("payload", 'the signed body has no object "data": not a Clerk event')
    fields = cast("dict[str, Any]", data)
    session = None
    if kind.startswith("session."):
        try:
            session = Session.from_json(fields)
        except ResponseValidationError as exc:
            if kind in _SESSION_EVENTS:
                shown = "; ".join(exc.errors[:3])
                raise _fail(
                    "payload", f"a {kind} event whose data is not a session: {shown}"
                ) from None
    instance = raw.get("instance_id")
    return WebhookEvent(
        id=msg_id,
        type=kind,
        timestamp=_event_time(raw.get("timestamp"), signed_at),
        instance_id=instance if isinstance(instance, str) else None,
        data=fields,
        raw=raw,
        session=session,
    )


def _event_time(value: object, signed_at: datetime) -> datetime:
    """The payload's ``timestamp`` (unix ms), exactly; the signing time when unusable."""
    if type(value) is not int:
        return signed_at
    seconds, millis = divmod(value, 1000)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(milliseconds=millis)
    except (OverflowError, OSError, ValueError):
        return signed_at


def sign_webhook(
    body: bytes | str,
    *,
    secret: str,
    msg_id: str | None = None,
    timestamp: datetime | float | None = None,
) -> dict[str, str]:
    """The three ``svix-*`` headers Clerk would send with ``body``, signed with ``secret``.

    For tests of a webhook endpoint (and for the testing fake). ``msg_id`` defaults to a
    new ``msg_...`` id; ``timestamp`` (aware datetime or unix seconds) to now. ``body``
    must be UTF-8, as JSON is.
    """
    signer = _signer(secret)
    text = _text(_body_bytes(body))
    if text is None:
        raise ValueError("body must be UTF-8 text (Clerk's payloads are JSON)")
    if msg_id is None:
        msg_id = "msg_" + "".join(secrets.choice(_BASE62) for _ in range(27))
    elif not isinstance(msg_id, str) or not msg_id:
        raise ValueError("msg_id must be a non-empty str")
    when = _unix_now(timestamp)
    try:
        seconds = math.floor(when)
        signed_at = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        seconds = -1  # refused just below, with the others out of range
        signed_at = None
    if signed_at is None or seconds < 0:
        raise ValueError(f"timestamp must be a time between 1970 and 9999, got {when!r}")
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(seconds),
        "svix-signature": signer.sign(msg_id, signed_at, text),
    }
