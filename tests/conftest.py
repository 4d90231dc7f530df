"""Suite-wide fixtures: every async test runs on both asyncio and trio."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests._engine import LEGACY, hx, legacy_fake_transport
from tests._redis import RedisServer
from tests._schedule import read_long_tests, spread_long_tests, xdist_workers

# A suite started in the background by a non-interactive shell (`cmd &`) inherits SIGINT
# ignored, and so would every process it starts: the Ctrl-C tests would then see no
# KeyboardInterrupt anywhere. Python's own handler here lets the children start with the
# default disposition again (an ignored signal stays ignored across exec).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

if TYPE_CHECKING:
    from clerk_sessions.testing import FakeClerk

REPO_ROOT = Path(__file__).resolve().parents[1]
# shared/ lies beside the checkout, both here and in CI; CLERK_SHARED_DIR overrides.
SHARED_DIR = Path(os.environ.get("CLERK_SHARED_DIR", REPO_ROOT.parent / "shared"))
OPENAPI_DIR = SHARED_DIR / "clerk-openapi"
FIXTURES_DIR = SHARED_DIR / "clerk-fixtures"


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=LEGACY)
def _legacy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the legacy-engine run, every client the SDK builds is an ``httpx.AsyncClient``
    (tests/_engine.py): the default engine, and the fake's in-process transport."""
    from clerk_sessions import _client
    from clerk_sessions._http.engine import Engine
    from clerk_sessions.testing import FakeClerk

    monkeypatch.setattr(_client, "HTTPX2", Engine(hx))
    monkeypatch.setattr(FakeClerk, "transport", lambda fake: legacy_fake_transport(fake.app))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, one per test process (xdist worker).

    Never skipped: without the binary the tests that need it fail, saying how to install it.
    """
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, emptied for this test (a killed server is started again)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.restart()
    redis_server.thaw()
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to kill, freeze or restart without disturbing
    other tests."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers of this test's own, with more configuration
    (``start_redis("--maxmemory-policy", "allkeys-lru")``); all are stopped afterwards."""
    started: list[RedisServer] = []

    def start(*config: str, persistent: bool = False) -> RedisServer:
        directory = tmp_path / f"redis-{len(started)}"
        server = RedisServer(directory, persistent=persistent, config=config)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.hookimpl(trylast=True)  # after `-m`/`-k` have deselected what they deselect
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Scheduling only (tests/_schedule.py): the long tests start first, spread over the
    # xdist workers. Every worker computes the same order, as xdist requires.
    items[:] = spread_long_tests(items, read_long_tests(), xdist_workers(), _node_id)


def _node_id(item: pytest.Item) -> str:
    return item.nodeid


# Every FakeClerk built anywhere in the suite checks each response it sends against
# the spec of the request's Clerk-API-Version (clerk_sessions.testing._validation).
os.environ.setdefault("CLERK_SESSIONS_FAKE_VALIDATE", str(OPENAPI_DIR))


@pytest.fixture
def served_session() -> Iterator[tuple[FakeClerk, str, str]]:
    """A fake with one user's session, served on a loopback port: the fake, its URL and
    the session's id."""
    from clerk_sessions.testing import FakeClerk  # imported by the tests that use it only

    fake = FakeClerk()
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    with fake.serve() as url:
        yield fake, url, session_id


def _fake_clerk_violations() -> list[object]:
    # Only a test that built a fake can have recorded one; never import the fake here.
    validation = sys.modules.get("clerk_sessions.testing._validation")
    if validation is None:
        return []
    return list(validation.take_response_violations())


@pytest.fixture(autouse=True)
def _fake_clerk_answers_match_the_spec() -> Iterator[None]:
    """Fail the test during which a FakeClerk sent a response the spec does not allow."""
    yield
    violations = _fake_clerk_violations()
    if violations:
        pytest.fail(
            "FakeClerk sent responses that break the OpenAPI spec:\n"
            + "\n".join(str(v) for v in violations),
            pytrace=False,
        )


# Under pytest-xdist each worker is a process with its own registry, and the controller
# ignores a worker's exit status: a worker hands what it saw after its last test to the
# controller (in its workeroutput), and the controller reports them and fails the run.
_WORKER_OUTPUT_KEY = "clerk_sessions_fake_violations"
_FROM_WORKERS = pytest.StashKey[list[str]]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Responses sent outside any test (session fixtures' teardown) are checked here.
    violations = [str(v) for v in _fake_clerk_violations()]
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker
        workeroutput[_WORKER_OUTPUT_KEY] = violations
        return
    violations += session.config.stash.get(_FROM_WORKERS, [])
    if violations:
        print("\nFakeClerk sent responses that break the OpenAPI spec:")
        for violation in violations:
            print(f"  {violation}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown to pytest without xdist
def pytest_testnodedown(node: Any, error: object) -> None:
    # In an xdist controller, as each worker finishes (before the controller's own
    # pytest_sessionfinish).
    output = getattr(node, "workeroutput", None) or {}
    node.config.stash.setdefault(_FROM_WORKERS, []).extend(output.get(_WORKER_OUTPUT_KEY, []))
