"""Models: frozen, forward compatible, strict about types, with readable failures."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import yaml

from clerk_sessions import models
from clerk_sessions._codec import converter as _serde
from clerk_sessions._codec import decode as _decode
from clerk_sessions.errors import ResponseValidationError
from clerk_sessions.models import QueryParamStatus, Session, SessionStatus
from tests.conftest import OPENAPI_DIR

from ._support import session_json


def decode(data: Any) -> Session:
    return _decode.decode_session(json.dumps(data).encode())


def test_a_full_session_decodes_with_every_field() -> None:
    session = decode(session_json(actor={"sub": "user_admin"}, tasks=[{"key": "choose-org"}]))
    assert session.id == "sess_1"
    assert session.status is SessionStatus.ACTIVE
    assert session.actor == {"sub": "user_admin"}
    assert session.tasks == (models.SessionTask(key="choose-org"),)
    assert session.latest_activity is not None
    assert session.latest_activity.is_mobile is False
    assert session.latest_activity.city == "Berlin"


def test_models_are_frozen() -> None:
    session = decode(session_json())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        session.status = SessionStatus.REVOKED  # type: ignore[misc]


def test_timestamps_stay_integers_with_utc_datetime_properties() -> None:
    session = decode(session_json(expire_at=1_700_000_000_123))
    assert session.expire_at == 1_700_000_000_123
    assert session.expire_at_dt == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    for name in ("last_active_at", "abandon_at", "updated_at", "created_at"):
        assert getattr(session, f"{name}_dt").tzinfo is UTC


def test_unknown_fields_are_ignored() -> None:
    session = decode(session_json(brand_new_field={"x": 1}))
    assert session.id == "sess_1"


def test_optional_fields_may_be_absent_or_null() -> None:
    data = session_json(latest_activity=None, tasks=None)
    del data["actor"]
    del data["last_active_organization_id"]
    session = decode(data)
    assert session.latest_activity is None and session.tasks is None and session.actor is None


def test_unknown_status_is_kept_as_a_pseudo_member_equal_to_the_raw_string() -> None:
    first = decode(session_json(status="suspended")).status
    second = decode(session_json(status="quarantined")).status
    assert isinstance(first, SessionStatus)
    assert first == "suspended" and first.value == "suspended"
    assert second == "quarantined"
    assert first != second  # never collapsed into one catch-all member
    assert not first.is_known and SessionStatus.ACTIVE.is_known
    assert "suspended" not in SessionStatus._value2member_map_  # the enum does not grow


def test_query_param_status_accepts_unknown_strings_too() -> None:
    assert QueryParamStatus("pending") == "pending"
    assert QueryParamStatus("active") is QueryParamStatus.ACTIVE


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["latest_activity"].update(is_mobile="false"), "$.latest_activity.is_mobile"),
        (lambda d: d.update(created_at="1700000000000"), "$.created_at"),
        (lambda d: d.update(expire_at=True), "$.expire_at"),
        (lambda d: d.update(id=7), "$.id"),
        (lambda d: d.pop("user_id"), "$.user_id"),
        (lambda d: d.update(tasks=[{"nokey": 1}]), "$.tasks[0].key"),
        (lambda d: d.update(status=None), "$.status"),
    ],
)
def test_a_broken_response_names_the_field_path_and_keeps_the_body(
    mutate: Any, expected: str
) -> None:
    data = session_json()
    mutate(data)
    body = json.dumps(data).encode()
    with pytest.raises(ResponseValidationError) as info:
        _decode.decode_session(body)
    assert any(error.endswith(f"@ {expected}") for error in info.value.errors), info.value.errors
    assert info.value.body == body
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_a_broken_item_in_a_paginated_list_names_its_index() -> None:
    body = json.dumps({"data": [session_json(), session_json(id=None)], "total_count": 2})
    with pytest.raises(ResponseValidationError) as info:
        _decode.decode_session_page(body.encode())
    assert any(e.endswith("@ $.data[1].id") for e in info.value.errors), info.value.errors


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b'"a string"', b"{}"])
def test_a_body_that_is_not_a_session_is_a_validation_error(body: bytes) -> None:
    with pytest.raises(ResponseValidationError):
        _decode.decode_session(body)


def test_list_accepts_the_bare_array_and_the_paginated_object() -> None:
    bare = _decode.decode_session_page(json.dumps([session_json()]).encode())
    paged = _decode.decode_session_page(
        json.dumps({"data": [session_json()], "total_count": 9}).encode()
    )
    assert bare.data == paged.data
    assert bare.total_count is None
    assert paged.total_count == 9


@pytest.mark.parametrize("body", [b'{"items": []}', b'{"data": [], "total_count": "9"}', b"17"])
def test_a_list_answer_of_neither_shape_is_a_validation_error(body: bytes) -> None:
    with pytest.raises(ResponseValidationError):
        _decode.decode_session_page(body)


def test_refresh_answers_must_match_their_object_kind() -> None:
    refresh = _serde.structure(b"", {"object": "token", "jwt": "x"}, models.SessionRefresh)
    assert refresh.jwt == "x"
    with pytest.raises(ResponseValidationError):
        _serde.structure(b"", {"object": "token"}, models.SessionRefresh)
    with pytest.raises(ResponseValidationError):
        _serde.structure(b"", {"object": "cookies"}, models.SessionRefresh)


def test_the_seed_model_names_exist_as_aliases() -> None:
    assert models.CreateSessionTokenResponseBody is models.SessionToken
    assert models.CreateSessionTokenFromTemplateResponseBody is models.SessionToken
    assert models.SessionActivityResponse is models.SessionActivity
    from clerk_sessions import QueryParamStatus as top_level

    assert top_level is models.QueryParamStatus


def test_sessions_are_hashable_and_compare_by_value() -> None:
    a = decode(session_json(actor={"sub": "x"}))
    b = decode(session_json(actor={"sub": "x"}))
    assert a == b and hash(a) == hash(b)


# --- drift: the spec's schemas against a strict copy of the converter -----------------


def _example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """The fullest instance a schema allows: every property, first enum value."""
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "oneOf" in schema:
        return _example(schema["oneOf"][0], components)
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _example(sub, components) for name, sub in props.items()}
    if kind == "array":
        return [_example(schema["items"], components)]
    return {"string": "x", "integer": 1, "boolean": True, "number": 1.5}[kind]


@pytest.mark.parametrize("version", ["2025-03-12", "2026-05-12"])
@pytest.mark.parametrize(
    ("schema_name", "model"),
    [("Session", models.Session), ("Token", models.SessionToken), ("Cookies", None)],
)
def test_every_spec_field_is_known_to_the_models(
    version: str, schema_name: str, model: type[Any] | None
) -> None:
    spec = yaml.safe_load((OPENAPI_DIR / f"bapi-sessions-{version}.yml").read_text())
    schemas = spec["components"]["schemas"]
    example = _example(schemas[schema_name], schemas)
    strict = _serde.make_converter(detailed=True, forbid_extra_keys=True)
    target = model or models.SessionRefresh
    # forbid_extra_keys: a field the spec has and the model lacks fails here.
    strict.structure(example, target)


def test_a_session_reads_from_its_json_raw_or_decoded() -> None:
    data = session_json(extra_field="ignored")
    from_mapping = Session.from_json(data)
    assert from_mapping == Session.from_json(json.dumps(data))
    assert from_mapping == Session.from_json(json.dumps(data).encode())
    assert from_mapping == _decode.decode_session(json.dumps(data).encode())
    assert from_mapping.latest_activity is not None
    assert from_mapping.latest_activity.city == "Berlin"


def test_a_session_from_json_names_the_field_at_fault() -> None:
    broken = session_json(latest_activity={**session_json()["latest_activity"], "is_mobile": 1})
    with pytest.raises(ResponseValidationError) as info:
        Session.from_json(broken)
    assert info.value.errors == [
        "invalid value for type, expected bool @ $.latest_activity.is_mobile"
    ]
    with pytest.raises(ResponseValidationError) as info:
        Session.from_json(b"{not json")
    assert info.value.body == b"{not json"


LATER = sorted(models._LATER)


@pytest.mark.parametrize("name", LATER)
def test_models_defined_on_first_use_are_models_like_any_other(name: str) -> None:
    value = getattr(models, name)
    assert name in dir(models)
    if name in models.__all__ and isinstance(value, type) and attrs.has(value):
        # Named after the public module: repr, pickle and the docs say models.<Name>.
        expected = "clerk_sessions._claims" if name in ("RequestState", "SessionClaims") else None
        assert value.__module__ == (expected or "clerk_sessions.models")
        assert pickle.loads(pickle.dumps(value)) is value


def test_the_models_defined_later_round_trip_through_pickle() -> None:
    status = models.JobStatus(name="incident", total=3, revoked=1, failed=1)
    token = models.SessionToken(jwt="x.y.z")
    assert pickle.loads(pickle.dumps(status)) == status
    assert pickle.loads(pickle.dumps(token)) == token
    assert repr(token) == "SessionToken(object='token', jwt='x.y.z')"


def test_an_unknown_model_name_is_an_attribute_error_that_names_it() -> None:
    with pytest.raises(
        AttributeError, match=r"module 'clerk_sessions.models' has no attribute 'Sesion'"
    ):
        models.Sesion  # noqa: B018


def test_the_names_defined_later_are_exactly_the_modules_names() -> None:
    # models._LATER, its TYPE_CHECKING imports and _more_models.__all__ list the same names.
    import ast
    import inspect

    from clerk_sessions import _claims, _more_models

    later = {name for name, module in models._LATER.items() if module == _more_models.__name__}
    assert later == set(_more_models.__all__)
    tree = ast.parse(inspect.getsource(models))
    guarded = next(
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    )
    seen = {
        (alias.name, node.module)
        for node in ast.walk(guarded)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == set(models._LATER.items())
    claims = {name for name, module in models._LATER.items() if module == _claims.__name__}
    assert claims == {"RequestState", "SessionClaims"}
    assert set(models._LATER) <= set(models.__all__) | {"CONNECTION_ERROR_CODE"}
