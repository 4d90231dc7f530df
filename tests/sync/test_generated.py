"""The facade is generated: it must match the generator, and the async API, exactly."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from clerk_sessions import AsyncClerk, Clerk
from clerk_sessions._resources.sessions import AsyncSessions
from clerk_sessions._sync import Sessions

ROOT = Path(__file__).resolve().parents[2]
# The async name -> its sync twin, where they differ.
RENAMED = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
LIFECYCLE = {*RENAMED, *RENAMED.values()}
# Return annotations that differ by design.
SYNC_RETURNS = {"AsyncClerk": "Clerk", "SessionIterator": "Iterator[Session]"}
PAIRS = [(AsyncClerk, Clerk), (AsyncSessions, Sessions)]


def gen_sync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_sync", ROOT / "scripts" / "gen_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_methods(cls: type[Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(cls).items()
        if callable(value) and (name in LIFECYCLE or name == "__init__" or not name.startswith("_"))
    }


def test_the_generated_file_is_up_to_date() -> None:
    generator = gen_sync()
    expected = generator.generate()
    actual = generator.TARGET.read_text()
    if actual != expected:
        pytest.fail(f"clerk_sessions/_sync.py is stale; run: {generator.COMMAND}", pytrace=False)


def test_check_mode_prints_a_diff_and_the_command_when_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generator = gen_sync()
    stale = tmp_path / "clerk_sessions" / "_sync.py"
    stale.parent.mkdir()
    # Only a trailing difference: a line-by-line zip would miss it.
    stale.write_text(generator.TARGET.read_text() + "# edited by hand\n")
    monkeypatch.setattr(generator, "TARGET", stale)
    monkeypatch.setattr(generator, "ROOT", tmp_path)

    assert generator.main(["--check"]) == 1

    out, err = capsys.readouterr()
    assert "-# edited by hand" in out
    assert "python scripts/gen_sync.py" in err


def test_check_mode_passes_on_the_committed_file() -> None:
    assert gen_sync().main(["--check"]) == 0


def test_it_formats_only_with_the_pinned_ruff(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = gen_sync()
    installed = importlib.metadata.version("ruff")
    assert generator.pinned_ruff() == installed
    monkeypatch.setattr(generator, "pinned_ruff", lambda: "0.0.1")
    with pytest.raises(SystemExit, match=rf"ruff 0\.0\.1 .* has {re.escape(installed)}: pip"):
        generator.generate()


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=["Clerk", "Sessions"])
def test_every_async_method_has_a_sync_twin_with_the_same_signature(
    async_cls: type[Any], sync_cls: type[Any]
) -> None:
    sync_methods = public_methods(sync_cls)
    for name, async_fn in public_methods(async_cls).items():
        if name == "__init__" and async_cls is AsyncSessions:
            continue  # built by the client, not by users: the transport vs the portal
        twin = RENAMED.get(name, name)
        assert twin in sync_methods, f"{sync_cls.__name__}.{twin} is missing"
        expected = inspect.signature(async_fn)
        actual = inspect.signature(sync_methods[twin])
        assert actual.parameters == expected.parameters, f"{twin}: parameters differ"
        returns = expected.return_annotation
        assert actual.return_annotation == SYNC_RETURNS.get(returns, returns), (
            f"{twin}: return annotation differs"
        )


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=["Clerk", "Sessions"])
def test_sync_methods_have_the_async_docstrings(async_cls: type[Any], sync_cls: type[Any]) -> None:
    for name, async_fn in public_methods(async_cls).items():
        if name in RENAMED or name == "__init__":
            continue
        assert getattr(sync_cls, name).__doc__ == async_fn.__doc__, name


def test_the_generated_file_says_not_to_edit_it() -> None:
    head = (ROOT / "clerk_sessions" / "_sync.py").read_text().splitlines()[:2]
    assert "do not edit" in head[0]
    assert "python scripts/gen_sync.py" in head[1]
