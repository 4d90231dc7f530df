"""With or without orjson (the ``fast`` extra), every body decodes to the same result or
fails with the same `ResponseValidationError`.

orjson and the standard library's `json` disagree on a few inputs: orjson refuses NaN,
Infinity, 1e400, a UTF-8 BOM, UTF-16, lone surrogates (escaped or encoded) and nesting
beyond 1024, and it reads an integer beyond 64 bits as a float where `json` keeps it
exact. Each test here decodes the same bytes both ways (``_decode._fast_loads`` set to
orjson, then to None as when the extra is missing) and requires the same outcome.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks._common import session_dict
from clerk_sessions._codec import decode as _decode
from clerk_sessions.errors import ResponseValidationError

Decoder = Callable[[bytes], Any]


def _outcome(decode: Decoder, body: bytes, fast: bool) -> tuple[str, Any]:
    saved = _decode._fast_loads
    _decode._fast_loads = orjson.loads if fast else None
    try:
        # repr: NaN != NaN, but the two results must read alike.
        return "ok", repr(decode(body))
    except ResponseValidationError as exc:
        return "error", (exc.errors, exc.body)
    finally:
        _decode._fast_loads = saved


def _both(decode: Decoder, body: bytes) -> tuple[tuple[str, Any], tuple[str, Any]]:
    return _outcome(decode, body, fast=True), _outcome(decode, body, fast=False)


def _session(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(session_dict(0))
    data.update(changes)
    return data


def _text(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


BIG = 2**64  # beyond orjson's integers: it reads this as 1.8446744073709552e+19
SESSION = _text(_session())
SESSION_BODIES: dict[str, bytes] = {
    # The integer fields: orjson's float fails the type check, json's integer passes.
    "big int in a timestamp": _text(_session(created_at=BIG)).encode(),
    "big negative int in a timestamp": _text(_session(created_at=-(2**63) - 1)).encode(),
    "u64 max in a timestamp": _text(_session(created_at=BIG - 1)).encode(),
    # A field typed Any: orjson's float would pass unless `_lossy` catches it.
    "big int in the actor": _text(_session(actor={"sub": "u", "n": BIG})).encode(),
    "big int deep in the actor": _text(_session(actor={"a": [{"b": [1, -BIG]}]})).encode(),
    "a genuine big float in the actor": _text(_session(actor={"f": 1e19})).encode(),
    "NaN in a timestamp": SESSION.replace(
        '"created_at":1700000000000', '"created_at":NaN'
    ).encode(),
    "Infinity in the actor": SESSION.replace('"actor":null', '"actor":{"x":Infinity}').encode(),
    "1e400 in the actor": SESSION.replace('"actor":null', '"actor":{"x":1e400}').encode(),
    "-Infinity in a timestamp": SESSION.replace(
        '"created_at":1700000000000', '"created_at":-Infinity'
    ).encode(),
    "duplicate keys": SESSION.replace('{"object":"session",', '{"id":"first","object":"session",')
    .replace('"status":"active"', '"status":"revoked","status":"active"')
    .encode(),
    "escaped lone surrogate": SESSION.replace('"city":"Berlin"', '"city":"\\ud800"').encode(),
    "encoded lone surrogate": SESSION.encode().replace(b'"Berlin"', b'"\xed\xa0\x80"'),
    "invalid UTF-8": SESSION.encode().replace(b'"Berlin"', b'"\xff"'),
    "UTF-8 BOM": b"\xef\xbb\xbf" + SESSION.encode(),
    "UTF-16": SESSION.encode("utf-16"),
    "nesting beyond orjson's limit": SESSION.replace(
        '"actor":null', '"actor":{"x":' + "[" * 1100 + "]" * 1100 + "}"
    ).encode(),
    "nesting beyond the recursion limit": SESSION.replace(
        '"actor":null', '"actor":{"x":' + "[" * 100_000 + "]" * 100_000 + "}"
    ).encode(),
    "control character in a string": SESSION.replace('"Berlin"', '"Ber\tlin"').encode(),
    "trailing garbage": (SESSION + " x").encode(),
    "trailing comma": SESSION[:-1].encode() + b",}",
    "leading zero": SESSION.replace('"created_at":1700000000000', '"created_at":01').encode(),
    "empty body": b"",
    "whitespace around": b" \n" + SESSION.encode() + b"\t ",
    "not an object": b'"session"',
    "wrong type": SESSION.replace('"is_mobile":false', '"is_mobile":"false"').encode(),
    "missing field": SESSION.replace('"user_id":', '"user":').encode(),
}


@pytest.mark.parametrize("body", SESSION_BODIES.values(), ids=SESSION_BODIES.keys())
def test_one_session_decodes_the_same_with_either_parser(body: bytes) -> None:
    fast, stdlib = _both(_decode.decode_session, body)

    assert fast == stdlib


@pytest.mark.parametrize("body", SESSION_BODIES.values(), ids=SESSION_BODIES.keys())
def test_a_page_decodes_the_same_with_either_parser(body: bytes) -> None:
    valid = _text(_session()).encode()
    for page in (b"[" + valid + b"," + body + b"]", b'{"data":[' + body + b'],"total_count":1}'):
        fast, stdlib = _both(_decode.decode_session_page, page)
        assert fast == stdlib


@pytest.mark.parametrize(
    "total",
    [b"1", str(BIG).encode(), b"-9223372036854775809", b"NaN", b"1.0", b"null", b'"1"'],
)
def test_total_count_decodes_the_same_with_either_parser(total: bytes) -> None:
    body = b'{"data":[' + _text(_session()).encode() + b'],"total_count":' + total + b"}"
    fast, stdlib = _both(_decode.decode_session_page, body)

    assert fast == stdlib


def test_the_stdlib_keeps_what_orjson_would_round_and_says_what_is_broken() -> None:
    # What the parametrized cases compare, spelled out once.
    body = SESSION_BODIES["big int in the actor"]
    assert _decode.decode_session(body).actor == {"sub": "u", "n": BIG}
    with pytest.raises(ResponseValidationError) as info:
        _decode.decode_session(SESSION_BODIES["nesting beyond the recursion limit"])
    assert info.value.errors[0].startswith("invalid JSON: maximum recursion depth exceeded")
    with pytest.raises(ResponseValidationError) as info:
        _decode.decode_session(SESSION_BODIES["NaN in a timestamp"])
    assert info.value.errors == ["invalid value for type, expected int @ $.created_at"]


@pytest.fixture
def _no_stdlib_decoding(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(body: bytes) -> Any:
        raise AssertionError("the standard library decoded a body orjson should have")

    monkeypatch.setattr(_decode, "_fast_loads", orjson.loads)
    monkeypatch.setattr(_decode, "loads", refuse)
    yield


@pytest.mark.usefixtures("_no_stdlib_decoding")
def test_with_orjson_installed_a_valid_body_never_reaches_the_stdlib() -> None:
    data = _session(actor={"sub": "user_1", "n": 2**63 - 1, "f": 1.5})
    page = [data, _session(latest_activity=None, tasks=[{"key": "k"}])]

    assert _decode.decode_session(_text(data).encode()).actor == data["actor"]
    assert len(_decode.decode_session_page(_text(page).encode()).data) == 2
    paged = _decode.decode_session_page(_text({"data": page, "total_count": 9}).encode())
    assert paged.total_count == 9


# Integers of every size, those orjson cannot hold (beyond 64 bits) drawn as often.
_integers = (
    st.integers()
    | st.integers(min_value=2**64, max_value=2**70)
    | st.integers(min_value=-(2**70), max_value=-(2**63) - 1)
)
# Any JSON value, the non-standard NaN/Infinity included.
_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | _integers | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(actor=_json, created_at=_integers | st.floats())
def test_any_values_decode_the_same_with_either_parser(actor: Any, created_at: Any) -> None:
    body = _text(_session(actor=actor, created_at=created_at)).encode()
    fast, stdlib = _both(_decode.decode_session, body)

    assert fast == stdlib


@settings(max_examples=200, deadline=None)
@given(number=st.decimals(allow_nan=False, allow_infinity=False) | st.floats())
def test_numbers_parse_to_the_same_value_with_either_parser(number: Any) -> None:
    # json.dumps writes floats as Python reads them back (NaN and Infinity included).
    text = json.dumps(number) if isinstance(number, float) else str(number)
    body = SESSION.replace('"actor":null', f'"actor":{{"n":{text}}}').encode()
    fast, stdlib = _both(_decode.decode_session, body)

    assert fast == stdlib
