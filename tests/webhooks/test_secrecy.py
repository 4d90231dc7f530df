"""The signing secret, and the signatures made with it, appear in no message, repr or log
record of clerk_sessions.webhooks."""

from __future__ import annotations

import logging

import pytest

from clerk_sessions import errors
from clerk_sessions.webhooks import sign_webhook, verify_webhook

from ._events import NOW, OTHER_SECRET, SECRET, body

KEY = SECRET.removeprefix("whsec_")


def forbidden() -> list[str]:
    """The secret, its key, and every signature of the deliveries below."""
    signatures = [
        sign_webhook(body(), secret=secret, msg_id="msg_1", timestamp=at)["svix-signature"]
        for secret in (SECRET, OTHER_SECRET)
        for at in (NOW, NOW - 3_600)
    ]
    return [SECRET, KEY, *signatures, *(s.removeprefix("v1,") for s in signatures)]


def failures() -> list[BaseException]:
    good = sign_webhook(body(), secret=SECRET, msg_id="msg_1", timestamp=NOW)
    cases = [
        (body(), {}),
        (body(), sign_webhook(body(), secret=SECRET, msg_id="msg_1", timestamp=NOW - 3_600)),
        (body(), sign_webhook(body(), secret=OTHER_SECRET, msg_id="msg_1", timestamp=NOW)),
        (body() + b" ", good),
        (b"x" * 2_000_000, good),
        (b"not json", sign_webhook(b"not json", secret=SECRET, msg_id="msg_1", timestamp=NOW)),
    ]
    found: list[BaseException] = []
    for data, headers in cases:
        with pytest.raises(errors.WebhookVerificationError) as info:
            verify_webhook(data, headers, secret=SECRET, now=NOW)
        found.append(info.value)
    for secret in (SECRET + "!", "whsec_" + KEY[:-3]):
        with pytest.raises(errors.ConfigurationError) as config:
            verify_webhook(body(), good, secret=secret, now=NOW)
        found.append(config.value)
    return found


def test_no_failure_message_or_repr_shows_the_secret_or_a_signature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    shown = [text for exc in failures() for text in (str(exc), repr(exc))]
    shown += [record.getMessage() for record in caplog.records]
    assert len(shown) >= 16
    for text in shown:
        for secret in forbidden():
            assert secret not in text


def test_the_event_repr_shows_no_signature() -> None:
    headers = sign_webhook(body(), secret=SECRET, msg_id="msg_1", timestamp=NOW)
    event = verify_webhook(body(), headers, secret=SECRET, now=NOW)
    assert headers["svix-signature"] not in repr(event)
    assert SECRET not in repr(event)
