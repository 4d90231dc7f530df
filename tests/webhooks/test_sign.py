"""sign_webhook: the headers Clerk would send, for tests of an endpoint."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from clerk_sessions import errors
from clerk_sessions.webhooks import sign_webhook, verify_webhook

from ._events import NOW, SECRET, body


def test_it_gives_the_three_svix_headers() -> None:
    headers = sign_webhook(body(), secret=SECRET, msg_id="msg_1", timestamp=NOW)
    assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}
    assert (headers["svix-id"], headers["svix-timestamp"]) == ("msg_1", str(NOW))
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", headers["svix-signature"])


def test_the_id_defaults_to_a_new_svix_style_id() -> None:
    first = sign_webhook(body(), secret=SECRET)["svix-id"]
    second = sign_webhook(body(), secret=SECRET)["svix-id"]
    assert re.fullmatch(r"msg_[0-9A-Za-z]{27}", first)
    assert first != second


def test_the_timestamp_defaults_to_now() -> None:
    before = int(time.time())
    stamp = int(sign_webhook(body(), secret=SECRET)["svix-timestamp"])
    assert before <= stamp <= int(time.time())


def test_the_timestamp_may_be_an_aware_datetime_in_any_zone() -> None:
    paris = timezone(timedelta(hours=1))
    at = datetime.fromtimestamp(NOW, tz=UTC).astimezone(paris)
    headers = sign_webhook(body(), secret=SECRET, timestamp=at)
    assert headers["svix-timestamp"] == str(NOW)


def test_a_fractional_timestamp_is_floored_as_svix_does() -> None:
    headers = sign_webhook(body(), secret=SECRET, timestamp=NOW + 0.9)
    assert headers["svix-timestamp"] == str(NOW)


@pytest.mark.parametrize("at", [-1, 1e20, float("nan"), float("inf")])
def test_a_timestamp_no_delivery_can_carry_is_refused(at: float) -> None:
    with pytest.raises(ValueError, match="timestamp must be a time"):
        sign_webhook(body(), secret=SECRET, timestamp=at)


def test_what_it_signs_verifies() -> None:
    headers = sign_webhook(body(), secret=SECRET)
    assert verify_webhook(body(), headers, secret=SECRET).type == "session.created"


def test_text_and_bytes_sign_alike() -> None:
    as_bytes = sign_webhook(body(), secret=SECRET, msg_id="msg_1", timestamp=NOW)
    as_text = sign_webhook(body().decode(), secret=SECRET, msg_id="msg_1", timestamp=NOW)
    assert as_bytes == as_text


def test_a_body_that_is_not_utf8_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        sign_webhook(b"\xff", secret=SECRET)


def test_an_empty_id_is_refused() -> None:
    with pytest.raises(ValueError, match="msg_id"):
        sign_webhook(body(), secret=SECRET, msg_id="")


def test_an_unusable_secret_is_a_configuration_error() -> None:
    with pytest.raises(errors.ConfigurationError, match=r"^secret is not a webhook signing secret"):
        sign_webhook(body(), secret="whsec_!")
