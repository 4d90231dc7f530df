"""The generated fast structuring code agrees with cattrs' own generated code.

`_serde`'s fast converter writes its own structuring functions for speed (see the
benchmarks); the detailed converter uses cattrs' generated code with the same scalar
hooks. These tests feed both the same bodies, valid and broken one field at a time,
and require the same verdict and the same result, so the speed work cannot loosen
strictness.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks._common import session_dict
from clerk_sessions._codec import converter as _serde
from clerk_sessions._codec import decode as _decode
from clerk_sessions.errors import ResponseValidationError
from clerk_sessions.models import Session, SessionActivity, SessionStatus, SessionTask

_reference = _serde.make_converter(detailed=True)

# Every JSON type, including the ones a lax converter would coerce ("false", 1, 1.0).
_json_values: st.SearchStrategy[Any] = st.sampled_from(
    [None, True, False, 0, 1, 1.5, "", "x", "false", "1", "active", [], [{"key": "k"}], {}]
)


def _fields(cls: type[Any]) -> list[str]:
    return [f.name for f in attrs.fields(cls)]


def _verdict(data: Any, target: Any = Session) -> tuple[str, Any]:
    try:
        return "ok", _reference.structure(data, target)
    except Exception:
        return "error", None


def _fast(data: Any, target: Any = Session) -> tuple[str, Any]:
    try:
        return "ok", _serde.structure(b"", data, target)
    except ResponseValidationError:
        return "error", None


def test_a_valid_session_decodes_the_same_both_ways() -> None:
    data = session_dict(3)
    data["tasks"] = [{"key": "choose-organization"}]
    data["actor"] = {"sub": "user_1"}
    assert _fast(data) == _verdict(data)
    assert _fast(data)[1].tasks == (SessionTask(key="choose-organization"),)


def test_instances_built_through_slots_equal_instances_built_by_init() -> None:
    decoded = _decode.decode_session(json.dumps(session_dict(1)).encode())
    built = _reference.structure(session_dict(1), Session)
    assert decoded == built
    assert hash(decoded) == hash(built)
    assert type(decoded) is Session
    assert type(decoded.latest_activity) is SessionActivity


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(_fields(Session)),
    value=_json_values,
    nested=st.booleans(),
    nested_field=st.sampled_from(_fields(SessionActivity)),
)
def test_one_changed_field_gets_the_same_verdict(
    field: str, value: Any, nested: bool, nested_field: str
) -> None:
    data = copy.deepcopy(session_dict(0))
    if nested:
        data["latest_activity"][nested_field] = value
    else:
        data[field] = value
    assert _fast(data) == _verdict(data)


@settings(max_examples=100, deadline=None)
@given(field=st.sampled_from(_fields(Session)), nested=st.booleans())
def test_a_missing_field_gets_the_same_verdict(field: str, nested: bool) -> None:
    data = copy.deepcopy(session_dict(0))
    if nested:
        data["latest_activity"].pop(field if field in data["latest_activity"] else "id")
    else:
        data.pop(field)
    assert _fast(data) == _verdict(data)


@pytest.mark.parametrize("body", [[], "session", 1, None, [session_dict(0)]])
def test_a_body_that_is_no_object_is_refused(body: Any) -> None:
    assert _fast(body) == ("error", None)


def test_unknown_status_stays_a_pseudo_member_and_unknown_keys_are_ignored() -> None:
    data = session_dict(0, status="sleeping")
    data["brand_new_field"] = {"x": 1}
    ok, session = _fast(data)
    assert ok == "ok"
    assert session.status == "sleeping" and isinstance(session.status, SessionStatus)
    assert not session.status.is_known
