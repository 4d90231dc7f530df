"""The session decoders written ahead of time (``scripts/gen_decoders.py``).

They must be exactly what `_serde` would generate at run time (the committed file is
fresh, and both give the same verdict on any body), and reading sessions through them
must not load cattrs, which is the point of writing them ahead: a broken body still gets
the detailed report, from the converter loaded then.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks._common import session_dict
from clerk_sessions._codec import converter as _serde
from clerk_sessions._codec import decode as _decode
from clerk_sessions._codec import generated as _session_decoders
from clerk_sessions._config import FAST_PATHS
from clerk_sessions.models import Session, SessionActivity, SessionTask
from tests.conftest import REPO_ROOT

_AT_RUN_TIME = _serde.make_converter(detailed=False, ahead_of_time=False)
_JSON_VALUES = st.sampled_from(
    [None, True, False, 0, 1, 1.5, 2.0**70, "", "x", "active", [], [{"key": 1}], {}, {"a": 1}]
)


def gen_decoders() -> ModuleType:
    path = REPO_ROOT / "scripts" / "gen_decoders.py"
    spec = importlib.util.spec_from_file_location("gen_decoders", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _verdict(structure: Any, data: Any) -> tuple[str, Any]:
    try:
        return "ok", structure(data, Session)
    except Exception:
        return "error", None


def test_the_committed_module_is_what_the_generator_writes() -> None:
    generator = gen_decoders()
    if generator.TARGET.read_text() != generator.generate():
        pytest.fail(f"{generator.TARGET.name} is stale; run: {generator.COMMAND}", pytrace=False)
    assert generator.main(["--check"]) == 0


def test_check_mode_names_a_stale_file_and_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generator = gen_decoders()
    stale = tmp_path / "_session_decoders.py"
    stale.write_text(generator.TARGET.read_text().replace("expected str @ id", "edited"))
    monkeypatch.setattr(generator, "TARGET", stale)
    assert generator.main(["--check"]) == 1
    out, err = capsys.readouterr()
    assert "-" in out and "edited" in out
    assert "python scripts/gen_decoders.py" in err


@pytest.mark.skipif(not FAST_PATHS, reason="the fast paths are switched off")
def test_the_converter_and_the_hot_path_use_the_functions_written_ahead() -> None:
    # With the switch on, test_fast_paths_switch checks cattrs' own hooks are used.
    assert _serde.converter.get_structure_hook(Session) is _session_decoders.structure_Session
    assert (
        _serde.converter.get_structure_hook(SessionTask) is _session_decoders.structure_SessionTask
    )
    _decode.decode_session(json.dumps(session_dict(0)).encode())
    assert _decode._structure_session is _session_decoders.structure_Session


def test_the_fields_typed_any_are_the_ones_the_models_declare() -> None:
    for cls, fields in _session_decoders.ANY_FIELDS.items():
        assert fields == _serde.any_fields(cls)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from([f.name for f in attrs.fields(Session)]),
    value=_JSON_VALUES,
    nested_field=st.sampled_from([f.name for f in attrs.fields(SessionActivity)]),
    where=st.sampled_from(["session", "activity", "task", "missing"]),
)
def test_ahead_and_at_run_time_give_the_same_verdict(
    field: str, value: Any, nested_field: str, where: str
) -> None:
    data = copy.deepcopy(session_dict(0))
    data["tasks"] = [{"key": "choose-organization"}]
    if where == "session":
        data[field] = value
    elif where == "activity":
        data["latest_activity"][nested_field] = value
    elif where == "task":
        data["tasks"] = [{"key": value}]
    else:
        data.pop(field)
    ahead = _verdict(_session_decoders.structure_Session, data)
    assert ahead == _verdict(_AT_RUN_TIME.get_structure_hook(Session), data)
    if ahead[0] == "ok":
        assert type(ahead[1]) is Session
        assert hash(ahead[1]) == hash(_AT_RUN_TIME.structure(data, Session))


def test_a_model_field_the_writer_cannot_spell_stops_the_generator() -> None:
    generator = gen_decoders()
    writer = generator.SourceWriter(_AT_RUN_TIME, generator.Module())
    with pytest.raises(SystemExit, match=r"cannot write .*list\[int\].* teach SourceWriter"):
        writer.hook_call(list[int], "v1")
    with pytest.raises(SystemExit, match="cannot write"):
        writer.class_ref(attrs.make_class("NotAModel", ["x"]))


HOT_PATH = """
import asyncio, json, sys
from tests._engine import hx
from clerk_sessions import AsyncClerk
from benchmarks._common import session_dict

BROKEN = dict(session_dict(0), id="sess_broken", created_at="yesterday")

def answer(request):
    if request.url.path.endswith("/sess_broken"):
        return hx.Response(200, json=BROKEN)
    if request.url.path.endswith("/sessions"):
        return hx.Response(200, json=[session_dict(1), session_dict(2)])
    return hx.Response(200, json=session_dict(0))

async def main():
    client = hx.AsyncClient(transport=hx.MockTransport(answer))
    async with AsyncClerk("sk_test_x", http_client=client) as clerk:
        one = await clerk.sessions.get(session_dict(0)["id"])
        other_models = "clerk_sessions._more_models" in sys.modules
        many = await clerk.sessions.list(user_id="user_1")
        loaded_before = "cattrs" in sys.modules
        try:
            await clerk.sessions.get("sess_broken")
        except Exception as exc:
            error = [type(exc).__name__, list(exc.errors)]
    print(json.dumps({"got": [one.id, len(many)], "cattrs_before": loaded_before,
                      "other_models_after_get": other_models,
                      "cattrs_after": "cattrs" in sys.modules, "error": error}))

asyncio.run(main())
"""


@pytest.mark.parametrize("orjson", [True, False], ids=["orjson", "json"])
def test_getting_and_listing_sessions_never_loads_cattrs(orjson: bool) -> None:
    # A fresh interpreter: this one has long imported cattrs. Without orjson, the
    # standard library parses (the module is kept out by a None entry in sys.modules).
    prelude = "" if orjson else "import sys; sys.modules['orjson'] = None\n"
    # The fast paths on, whatever this run's switch says: they are what is tested here.
    env = {k: v for k, v in os.environ.items() if k != "CLERK_SESSIONS_NO_FAST_PATHS"}
    result = subprocess.run(
        [sys.executable, "-c", prelude + HOT_PATH],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["got"] == [session_dict(0)["id"], 2]
    assert answer["cattrs_before"] is False
    # Nor are the models a get does not return defined (a page is, by the list).
    assert answer["other_models_after_get"] is False
    # A broken body: the detailed converter (cattrs) is loaded to name every fault.
    assert answer["cattrs_after"] is True
    assert answer["error"] == [
        "ResponseValidationError",
        ["invalid value for type, expected int @ $.created_at"],
    ]
