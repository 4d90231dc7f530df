"""Every Python example in README.md and docs/ runs, against a FakeClerk on a real port.

Conventions for writing examples (docs/contributing-examples is this docstring):

- The blocks of one page run in order in one shared namespace, so a block may use what
  an earlier block on the same page defined. Each page starts from a fresh namespace and
  freshly seeded fake state.
- A block with top-level ``await`` runs on the page's event loop (asyncio); any other
  block runs in a worker thread, where the sync ``Clerk`` works as in a script.
- A block preceded by ``<!-- not-run: REASON -->`` is not run (Django settings
  fragments, shell-only snippets). Use it sparingly; the reason is required.
- A page that uses ``clerk_sessions.redis`` gets a real redis-server (emptied for the
  page), its URL in the environment as ``REDIS_URL``.
- The environment has ``CLERK_SECRET_KEY`` and ``CLERK_API_URL`` pointing at the fake,
  whose secret key is the literal placeholder ``sk_test_...``, so examples may pass
  ``bearer_auth="sk_test_..."`` or rely on the environment.
- Seeded state: users ``user_123`` and ``user_456``; client ``client_123``; the active
  sessions ``sess_1234567890abcdef`` and ``sess_1`` (user ``user_123``, client
  ``client_123``) and two more for ``user_123`` and one for ``user_456``; the JWT
  template ``custom_hasura``. Tokens are issued for the party
  ``https://app.example.com``.
- Names a fragment may use without defining them: ``clerk`` (an ``AsyncClerk`` on the
  fake; a block with top-level ``await`` gets it back if a sync block rebound ``clerk``
  to a ``Clerk``), ``token`` (a session token of ``sess_1234567890abcdef``) and
  ``request`` (a header mapping carrying that token).
- A block that leaves a Starlette/FastAPI application in ``app`` has it started and
  stopped with ``TestClient`` (so its lifespan runs).
- A block that defines pytest-style ``test_*`` functions has each of them called, as
  pytest would: a ``fake_clerk`` parameter gets a fresh ``FakeClerk``, ``monkeypatch``
  a ``pytest.MonkeyPatch`` undone afterwards; ``async def`` tests are awaited.
"""

from __future__ import annotations

import ast
import inspect
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from clerk_sessions import AsyncClerk
from clerk_sessions.testing import FakeClerk
from tests.docs._blocks import Block, blocks, stray_markers

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
PAGES_WITH_CODE = [page for page in PAGES if blocks(page)]

SECRET_KEY = "sk_test_..."
SESSION_ID = "sess_1234567890abcdef"
AUTHORIZED_PARTY = "https://app.example.com"


def _seed(fake: FakeClerk) -> None:
    fake.reset()
    fake.add_client("user_123", client_id="client_123")
    fake.add_session(user_id="user_123", client_id="client_123", session_id=SESSION_ID)
    fake.add_session(user_id="user_123", client_id="client_123", session_id="sess_1")
    fake.add_session(user_id="user_123")
    fake.add_session(user_id="user_123")
    fake.add_session(user_id="user_456")
    fake.add_template("custom_hasura", claims={"sid": "{{session.id}}", "uid": "{{user.id}}"})


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeClerk, str]]:
    fake = FakeClerk(secret_key=SECRET_KEY, authorized_party=AUTHORIZED_PARTY)
    with fake.serve() as url:
        yield fake, url


def _relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _run_app(app: Any) -> None:
    from starlette.testclient import TestClient

    with TestClient(app):
        pass


async def _run_page(page_blocks: list[Block], namespace: dict[str, Any]) -> None:
    async with AsyncClerk() as clerk:
        namespace["clerk"] = clerk
        apps_seen: set[int] = set()
        seen: set[int] = set()
        for block in page_blocks:
            code = compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            try:
                if code.co_flags & inspect.CO_COROUTINE:
                    if not isinstance(namespace.get("clerk"), AsyncClerk):
                        # A sync block rebound it to a Clerk; async fragments mean ours.
                        namespace["clerk"] = clerk
                    await eval(code, namespace)
                else:
                    await anyio.to_thread.run_sync(exec, code, namespace)
                for name, value in list(namespace.items()):
                    if name.startswith("test_") and callable(value) and id(value) not in seen:
                        seen.add(id(value))
                        await _call_test(value)
                app = namespace.get("app")
                if app is not None and id(app) not in apps_seen and _is_asgi_app(app):
                    apps_seen.add(id(app))
                    await anyio.to_thread.run_sync(_run_app, app)
            except BaseException as exc:
                if hasattr(exc, "add_note"):  # Python 3.11+
                    exc.add_note(f"in the example at {block.where}")
                raise


async def _call_test(function: Any) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch, tempfile.TemporaryDirectory() as tmp:
        fixtures = {
            "fake_clerk": FakeClerk,
            "monkeypatch": lambda: monkeypatch,
            "tmp_path": lambda: Path(tmp),
        }
        params = inspect.signature(function).parameters
        unknown = set(params) - set(fixtures)
        assert not unknown, f"{function.__name__} asks for fixtures the runner lacks: {unknown}"
        kwargs = {name: fixtures[name]() for name in params}
        if inspect.iscoroutinefunction(function):
            await function(**kwargs)
        else:
            await anyio.to_thread.run_sync(lambda: function(**kwargs))


def _is_asgi_app(app: object) -> bool:
    from starlette.applications import Starlette

    return isinstance(app, Starlette)


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_relative)
def test_examples_of_page_run(
    page: Path,
    served: tuple[FakeClerk, str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    fake, url = served
    _seed(fake)
    monkeypatch.setenv("CLERK_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("CLERK_API_URL", url)
    if "clerk_sessions.redis" in page.read_text(encoding="utf-8"):
        # Only the pages about the shared quota start one (a server per test process).
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_url"))
    monkeypatch.chdir(ROOT)
    runnable = [block for block in blocks(page) if block.not_run is None]
    if not runnable:
        reasons = "; ".join(f"{b.where}: {b.not_run}" for b in blocks(page))
        pytest.skip(f"every example is marked not-run ({reasons})")
    token = fake.mint_token(SESSION_ID)
    # The namespace is a module's, importable while the page runs (as runpy does for a
    # script): frameworks resolve annotations through sys.modules[function.__module__].
    module = types.ModuleType(f"example:{_relative(page)}")
    module.__dict__.update(token=token, request={"Authorization": f"Bearer {token}"})
    sys.modules[module.__name__] = module
    try:
        anyio.run(_run_page, runnable, module.__dict__, backend="asyncio")
    finally:
        del sys.modules[module.__name__]


def test_not_run_markers_stand_before_a_python_block() -> None:
    stray = {_relative(page): lines for page in PAGES if (lines := stray_markers(page))}
    assert not stray, f"not-run markers not followed by a ```python block: {stray}"


def test_not_run_blocks_are_few() -> None:
    all_blocks = [block for page in PAGES for block in blocks(page)]
    skipped = [block for block in all_blocks if block.not_run is not None]
    # Not-run is for fragments that cannot run on their own (settings files); if this
    # grows, make the examples runnable instead.
    assert len(skipped) <= max(6, len(all_blocks) // 8), [b.where for b in skipped]
