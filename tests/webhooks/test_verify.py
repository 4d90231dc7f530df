"""verify_webhook: what passes, what is refused and why, and what the event holds."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from django.http.request import HttpHeaders
from starlette.datastructures import Headers

from clerk_sessions import errors, models
from clerk_sessions.webhooks import MAX_WEBHOOK_BYTES, WebhookEvent, sign_webhook, verify_webhook

from ._events import NOW, OTHER_SECRET, SECRET, body, payload


def signed(data: bytes | str = b"", *, secret: str = SECRET, at: int = NOW) -> dict[str, str]:
    return sign_webhook(data or body(), secret=secret, msg_id="msg_1", timestamp=at)


def verify(data: bytes | str, headers: Mapping[str, str], **kwargs: Any) -> WebhookEvent:
    kwargs.setdefault("secret", SECRET)
    kwargs.setdefault("now", NOW)
    return verify_webhook(data, headers, **kwargs)


def refusal(data: bytes | str, headers: Mapping[str, str], **kwargs: Any) -> str:
    with pytest.raises(errors.WebhookVerificationError) as info:
        verify(data, headers, **kwargs)
    return info.value.reason


# ---------------------------------------------------------------- what passes


def test_a_delivery_signed_with_the_secret_verifies() -> None:
    event = verify(body(), signed())
    assert (event.id, event.type) == ("msg_1", "session.created")


def test_the_standard_webhooks_header_names_are_accepted() -> None:
    headers = {name.replace("svix-", "webhook-"): value for name, value in signed().items()}
    assert verify(body(), headers).id == "msg_1"


def test_svix_names_win_over_the_standard_names_when_both_are_there() -> None:
    forged = {name.replace("svix-", "webhook-"): "v1,AAAA" for name in signed()}
    assert verify(body(), {**forged, **signed()}).id == "msg_1"


def test_header_names_are_matched_whatever_their_case() -> None:
    headers = {name.upper(): value for name, value in signed().items()}
    assert verify(body(), headers).id == "msg_1"


HEADER_MAPPINGS: dict[str, Callable[[dict[str, str]], Mapping[str, str]]] = {
    "starlette": lambda h: Headers(h),
    "httpx2": lambda h: httpx2.Headers(h),
    "django": lambda h: HttpHeaders(
        {"HTTP_" + name.upper().replace("-", "_"): value for name, value in h.items()}
    ),
}


@pytest.mark.parametrize("make", HEADER_MAPPINGS.values(), ids=HEADER_MAPPINGS.keys())
def test_the_frameworks_header_mappings_are_read(
    make: Callable[[dict[str, str]], Mapping[str, str]],
) -> None:
    assert verify(body(), make(signed())).id == "msg_1"


def test_any_matching_entry_of_several_signatures_passes() -> None:
    # While a secret rotates, Svix signs with the old and the new one.
    old = signed(secret=OTHER_SECRET)["svix-signature"]
    headers = {
        **signed(),
        "svix-signature": f"v1a,ZWQyNTUxOQ== {old} " + signed()["svix-signature"],
    }
    assert verify(body(), headers).id == "msg_1"


@pytest.mark.parametrize("data", [body(), body().decode(), bytearray(body()), memoryview(body())])
def test_the_body_may_be_bytes_or_text(data: Any) -> None:
    assert verify(data, signed()).type == "session.created"


def test_the_secret_comes_from_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", SECRET)
    assert verify_webhook(body(), signed(), now=NOW).id == "msg_1"


def test_a_secret_without_its_prefix_or_padding_is_the_same_secret() -> None:
    bare = SECRET.removeprefix("whsec_")
    unpadded = "whsec_" + base64.b64encode(b"twenty-two bytes key!!").decode().rstrip("=")
    assert verify(body(), signed(), secret=bare).id == "msg_1"
    assert verify(body(), signed(secret=unpadded), secret=unpadded).id == "msg_1"


# ---------------------------------------------------------------- the time window


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_a_timestamp_within_the_tolerance_passes(offset: int) -> None:
    assert verify(body(), signed(at=NOW + offset)).id == "msg_1"


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 86_400])
def test_a_timestamp_outside_the_tolerance_is_refused(offset: int) -> None:
    assert refusal(body(), signed(at=NOW + offset)) == "timestamp"


def test_the_tolerance_is_a_parameter() -> None:
    headers = signed(at=NOW - 3_600)
    assert refusal(body(), headers) == "timestamp"
    assert verify(body(), headers, tolerance_s=3_600).id == "msg_1"


def test_now_may_be_an_aware_datetime() -> None:
    now = datetime.fromtimestamp(NOW, tz=UTC)
    assert verify(body(), signed(), now=now).id == "msg_1"
    assert refusal(body(), signed(), now=now + timedelta(hours=1)) == "timestamp"


def test_now_as_a_naive_datetime_is_refused_as_ambiguous() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(body(), signed(), now=datetime(2023, 11, 14))


@pytest.mark.parametrize("tolerance", [-1, float("nan")])
def test_a_negative_tolerance_is_refused(tolerance: float) -> None:
    with pytest.raises(ValueError, match="tolerance_s"):
        verify(body(), signed(), tolerance_s=tolerance)


@pytest.mark.parametrize(
    "stamp",
    ["soon", "1.7e9", "1700000000.0", "-1700000000", " 1700000000", "\uff11\uff17" + "\uff10" * 8],
)
def test_a_timestamp_that_is_not_whole_unix_seconds_is_refused(stamp: str) -> None:
    assert refusal(body(), {**signed(), "svix-timestamp": stamp}) == "timestamp"


def test_a_timestamp_beyond_what_a_datetime_holds_is_refused() -> None:
    headers = {**signed(), "svix-timestamp": "999999999999"}
    assert refusal(body(), headers, tolerance_s=float("inf")) == "timestamp"


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_a_delivery_without_one_of_the_headers_is_refused(missing: str) -> None:
    headers = {name: value for name, value in signed().items() if name != missing}
    assert refusal(body(), headers) == "missing_headers"


def test_an_empty_header_counts_as_missing() -> None:
    assert refusal(body(), {**signed(), "svix-id": ""}) == "missing_headers"


def test_a_delivery_with_no_headers_at_all_is_refused() -> None:
    assert refusal(body(), {}) == "missing_headers"


def test_a_body_changed_after_signing_is_refused() -> None:
    assert refusal(body().replace(b"sess_1", b"sess_2"), signed()) == "signature"


def test_a_truncated_body_is_refused() -> None:
    assert refusal(body()[:-10], signed()) == "signature"


def test_a_delivery_signed_with_another_secret_is_refused() -> None:
    assert refusal(body(), signed(secret=OTHER_SECRET)) == "signature"


def test_another_id_than_the_signed_one_is_refused() -> None:
    assert refusal(body(), {**signed(), "svix-id": "msg_2"}) == "signature"


def test_another_timestamp_than_the_signed_one_is_refused() -> None:
    assert refusal(body(), {**signed(), "svix-timestamp": str(NOW + 1)}) == "signature"


@pytest.mark.parametrize(
    "signature",
    ["v1,", "v1", "garbage", "{sig}", "v2,{sig}", "V1,{sig}", "v1,{sig}x", "v1,{sig}\t"],
)
def test_a_malformed_signature_header_is_refused(signature: str) -> None:
    good = signed()["svix-signature"].removeprefix("v1,")
    headers = {**signed(), "svix-signature": signature.format(sig=good)}
    assert refusal(body(), headers) == "signature"


def test_a_body_over_the_limit_is_refused_before_its_signature_is_checked() -> None:
    huge = b'{"type": "session.created", "data": {}, "pad": "' + b"x" * MAX_WEBHOOK_BYTES + b'"}'
    with pytest.raises(errors.WebhookVerificationError) as info:
        verify(huge, {**signed(), "svix-signature": "v1,AAAA"})
    assert info.value.reason == "payload"
    assert "1 MiB" in str(info.value)


def test_a_signed_body_of_exactly_the_limit_passes() -> None:
    event = json.dumps(payload("user.created", data={"id": "user_1"}))
    data = (event + " " * (MAX_WEBHOOK_BYTES - len(event))).encode()
    assert len(data) == MAX_WEBHOOK_BYTES
    assert verify(data, signed(data)).type == "user.created"


def test_a_body_that_is_not_utf8_is_refused_as_payload() -> None:
    assert refusal(b"\xff\xfe{}", signed()) == "payload"


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"type": "session.created", "data": ',
        b"[]",
        b'"session.created"',
        b'{"data": {}}',
        b'{"type": 1, "data": {}}',
        b'{"type": "session.created"}',
        b'{"type": "user.created", "data": []}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"type": "user.created", "data": {"n": ' + b"9" * 5_000 + b"}}",
    ],
    ids=[
        "not-json",
        "cut-json",
        "array",
        "string",
        "no-type",
        "type-not-a-string",
        "no-data",
        "data-not-an-object",
        "nested-100000-deep",
        "5000-digit-number",
    ],
)
def test_a_signed_body_that_is_not_a_clerk_event_is_refused_as_payload(data: bytes) -> None:
    assert refusal(data, signed(data)) == "payload"


def test_a_known_session_event_whose_data_is_not_a_session_is_refused() -> None:
    data = body("session.revoked", data={"id": "sess_1", "status": 3})
    with pytest.raises(errors.WebhookVerificationError) as info:
        verify(data, signed(data))
    assert info.value.reason == "payload"
    assert "@ $." in str(info.value)  # names the field at fault


# ---------------------------------------------------------------- the event


def test_the_event_holds_the_payload() -> None:
    event = verify(body(), signed())
    assert event.instance_id == "ins_123"
    assert event.raw == payload()
    assert event.data == payload()["data"]


def test_the_event_time_is_the_payloads_in_utc_to_the_millisecond() -> None:
    event = verify(body(), signed())
    assert event.timestamp == datetime(2023, 11, 14, 22, 13, 20, 123_000, tzinfo=UTC)


@pytest.mark.parametrize("stamp", [None, "yesterday", 1.5, True, 10**30])
def test_without_a_usable_payload_time_the_event_time_is_the_signing_time(stamp: Any) -> None:
    data = body(timestamp=stamp)
    event = verify(data, signed(data, at=NOW - 5))
    assert event.timestamp == datetime.fromtimestamp(NOW - 5, tz=UTC)


@pytest.mark.parametrize(
    "kind", ["session.created", "session.revoked", "session.ended", "session.removed"]
)
def test_a_session_event_carries_the_decoded_session(kind: str) -> None:
    data = body(kind)
    session = verify(data, signed(data)).session
    assert session == models.Session.from_json(payload()["data"])
    assert session is not None and session.id == "sess_1"


def test_an_unknown_event_type_is_returned_without_a_session() -> None:
    data = body("organization.created", data={"id": "org_1", "name": "Acme"})
    event = verify(data, signed(data))
    assert (event.type, event.session, event.data) == (
        "organization.created",
        None,
        {"id": "org_1", "name": "Acme"},
    )


def test_an_unknown_session_event_whose_data_is_no_session_is_still_returned() -> None:
    data = body("session.something_new", data={"token_id": "tok_1"})
    event = verify(data, signed(data))
    assert (event.type, event.session) == ("session.something_new", None)


def test_an_unknown_session_event_with_session_data_gets_the_session() -> None:
    data = body("session.something_new")
    session = verify(data, signed(data)).session
    assert session is not None and session.id == "sess_1"


def test_an_instance_id_that_is_not_a_string_is_none() -> None:
    data = body(instance_id=7)
    assert verify(data, signed(data)).instance_id is None


def test_the_event_is_frozen() -> None:
    event = verify(body(), signed())
    with pytest.raises(AttributeError):
        event.type = "session.ended"  # type: ignore[misc]


# ---------------------------------------------------------------- configuration and misuse


def test_no_secret_anywhere_is_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLERK_WEBHOOK_SIGNING_SECRET", raising=False)
    with pytest.raises(errors.ConfigurationError, match="CLERK_WEBHOOK_SIGNING_SECRET"):
        verify_webhook(body(), signed())


def test_an_empty_variable_counts_as_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", "")
    with pytest.raises(errors.ConfigurationError, match="no webhook signing secret"):
        verify_webhook(body(), signed())


def test_the_configuration_error_comes_before_looking_at_the_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLERK_WEBHOOK_SIGNING_SECRET", raising=False)
    with pytest.raises(errors.ConfigurationError):
        verify_webhook(b"", {})


@pytest.mark.parametrize(
    "secret",
    ["", "whsec_", "whsec_abcde", "whsec_not base64!", f'"{SECRET}"', f"{SECRET}\n", "sk_test_x"],
)
def test_an_unusable_secret_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="not a webhook signing secret") as info:
        verify(body(), signed(), secret=secret)
    if len(secret) > len("whsec_"):
        assert secret.strip('"\n') not in str(info.value)


def test_an_unusable_secret_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLERK_WEBHOOK_SIGNING_SECRET", "whsec_?")
    with pytest.raises(errors.ConfigurationError, match=r"^CLERK_WEBHOOK_SIGNING_SECRET is not"):
        verify_webhook(body(), signed(), now=NOW)


def test_a_parsed_body_is_refused_with_a_hint_to_pass_the_raw_one() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        verify(payload(), signed())  # type: ignore[arg-type]


def test_headers_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(TypeError, match="mapping"):
        verify(body(), list(signed().items()))  # type: ignore[arg-type]


def test_the_error_reason_is_also_the_start_of_its_message() -> None:
    with pytest.raises(errors.WebhookVerificationError, match=r"^signature: "):
        verify(body(), signed(secret=OTHER_SECRET))
