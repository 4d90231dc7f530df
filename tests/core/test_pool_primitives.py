"""asyncio's own locks, events and (absent) shields under the SDK's pool.

`clerk_sessions._pool_primitives` rests on two facts about anyio, checked here first so
that an anyio that changes either fails these tests instead of a user's request: every
anyio cancel scope on asyncio is made by ``anyio._backends._asyncio`` (so while that
module is not loaded there is no anyio cancellation to shield from), and an anyio shield
does not stop asyncio's own ``task.cancel()`` anyway. Then: a process that only uses the
SDK on asyncio never loads that backend for calls that are answered, queued for a
connection or served in turn by a pool of one (a call cancelled mid-request takes
httpcore's error path, which does load it, and leaves the pool sound); the event keeps
httpcore's contract, pool timeout included; and on trio, or once anyio is in use,
httpcore's own primitives and shields are used as before.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpcore
import httpx
import pytest
import sniffio
from httpcore._async.connection_pool import PoolByteStream

from clerk_sessions import AsyncClerk
from clerk_sessions._config import FAST_PATHS
from clerk_sessions._netbackend import AsyncioBackend
from clerk_sessions._pool import ReclaimingConnectionPool, use_reclaiming_pool
from clerk_sessions._pool_primitives import (
    ANYIO_ASYNCIO_BACKEND,
    AsyncioEvent,
    shield_can_matter,
)
from clerk_sessions.testing import FakeClerk, FaultConfig
from tests.conftest import REPO_ROOT

# The primitives come with the SDK's asyncio network backend: Python 3.11+, fast paths on.
needs_primitives = pytest.mark.skipif(
    sys.version_info < (3, 11) or not FAST_PATHS,
    reason="the SDK's pool has them only on 3.11+ with the fast paths on",
)


def run_fresh(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, returned."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- what it rests on


@pytest.mark.parametrize(
    "make",
    [
        "anyio.Event()",
        "anyio.Lock()",
        "with anyio.CancelScope(): pass",
        "with anyio.fail_after(1): pass",
    ],
)
def test_every_anyio_primitive_on_asyncio_is_made_by_the_backend_module(make: str) -> None:
    seen = run_fresh(
        f"""
        import asyncio, json, sys
        import anyio

        async def main():
            before = {ANYIO_ASYNCIO_BACKEND!r} in sys.modules
            {make}
            return before, {ANYIO_ASYNCIO_BACKEND!r} in sys.modules

        before, after = asyncio.run(main())
        print(json.dumps({{"before": before, "after": after}}))
        """
    )
    assert seen == {"before": False, "after": True}


def test_an_anyio_shield_does_not_stop_asyncios_own_cancellation() -> None:
    async def shielded(reached: list[str]) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                reached.append("cancelled inside the shield")
                raise

    async def main() -> list[str]:
        reached: list[str] = []
        task = asyncio.ensure_future(shielded(reached))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return reached

    assert asyncio.run(main()) == ["cancelled inside the shield"]


# ---------------------------------------------------------------------- a process of the SDK alone


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str, str]]:
    """(base URL, secret key, a session id) of a fake that answers after 5-20 ms."""
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.005, 0.02), seed=3))
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    with fake.serve() as url:
        yield url, fake.secret_key, session_id


@needs_primitives
def test_answered_and_queued_calls_never_load_anyios_backend_and_cancelled_ones_leave_no_trace(
    served: tuple[str, str, str],
) -> None:
    url, key, session_id = served
    seen = run_fresh(
        f"""
        import asyncio, json, sys
        from clerk_sessions import AsyncClerk

        BACKEND = {ANYIO_ASYNCIO_BACKEND!r}

        async def main():
            seen = {{}}
            async with AsyncClerk({key!r}, server_url={url!r}) as clerk:
                pool = clerk._transport.client._transport._pool
                seen["get"] = (await clerk.sessions.get({session_id!r})).id
                seen["list"] = len(await clerk.sessions.list(limit=5))

                # More calls than the pool has connections (100): the rest queue and
                # wait on the event for a connection that another call frees.
                got = await asyncio.gather(
                    *(clerk.sessions.get({session_id!r}) for _ in range(130))
                )
                seen["queued"] = len(got)

                locks = [
                    type(c._request_lock).__module__ + "." + type(c._request_lock).__name__
                    for c in pool.connections
                ]
                seen["locks"] = sorted(set(locks))

            # A pool of one connection: the calls take it in turn, each waiting on the
            # event with the pool timeout (the client's) as its deadline.
            async with AsyncClerk({key!r}, server_url={url!r}) as clerk:
                clerk._transport.client._transport._pool._max_connections = 1
                results = await asyncio.gather(
                    *(clerk.sessions.get({session_id!r}) for _ in range(3)),
                    return_exceptions=True,
                )
                seen["one_connection"] = [type(r).__name__ for r in results]
            seen["backend_loaded"] = BACKEND in sys.modules

            # Calls cancelled by asyncio itself at every stage of their way. A call cut
            # short while its request is under way takes httpcore's error path, which
            # builds an anyio shield (and so loads the backend): the pool stays sound.
            async with AsyncClerk({key!r}, server_url={url!r}) as clerk:
                pool = clerk._transport.client._transport._pool
                cancelled = 0
                # Deadlines from 0 (always cut short) to 16 ms, then ten calls with 30 s
                # (never cut short, however loaded the machine).
                for i in range(60):
                    deadline = i / 3000 if i < 50 else 30.0
                    try:
                        await asyncio.wait_for(clerk.sessions.get({session_id!r}), deadline)
                    except asyncio.TimeoutError:
                        cancelled += 1
                seen["cancelled"] = cancelled
                seen["after"] = (await clerk.sessions.get({session_id!r})).id
                seen["requests_left"] = len(pool._requests)
                seen["all_idle"] = all(c.is_idle() or c.is_closed() for c in pool.connections)
            return seen

        print(json.dumps(asyncio.run(main())))
        """
    )
    assert seen["get"] == seen["after"] == session_id
    assert seen["list"] >= 1
    assert seen["queued"] == 130
    assert 1 <= seen["cancelled"] <= 50, "the zero deadline cuts short, the 30 s ones do not"
    assert seen["requests_left"] == 0 and seen["all_idle"] is True
    assert seen["locks"] == ["asyncio.locks.Lock"]
    assert seen["one_connection"] == ["Session"] * 3
    assert seen["backend_loaded"] is False


# ---------------------------------------------------------------------------- the event


def test_the_event_keeps_httpcores_contract() -> None:
    async def main() -> None:
        already = AsyncioEvent()
        already.set()
        await already.wait(timeout=0)  # set before the wait: no suspension, no timeout
        assert already.is_set()

        later = AsyncioEvent()
        asyncio.get_running_loop().call_later(0.01, later.set)
        await later.wait(timeout=5)
        assert later.is_set() and later._waiters == []

        never = AsyncioEvent()
        with pytest.raises(httpcore.PoolTimeout, match="pool timeout"):
            await never.wait(timeout=0.01)
        assert never._waiters == []

        forever = AsyncioEvent()
        waiting = asyncio.ensure_future(forever.wait(timeout=None))
        await asyncio.sleep(0.02)
        assert not waiting.done()  # no timeout: it waits as long as it takes
        waiting.cancel()  # and its own cancellation goes through, untouched
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert forever._waiters == []
        forever.set()  # setting it after its waiter left is harmless

        many = AsyncioEvent()
        waiters = [asyncio.ensure_future(many.wait(timeout=5)) for _ in range(3)]
        await asyncio.sleep(0)
        many.set()
        await asyncio.gather(*waiters)

    asyncio.run(main())


# ---------------------------------------------------------------------------- a pool at work


@needs_primitives
def test_a_pool_of_one_connection_serves_queued_calls_in_turn_and_times_out_the_rest(
    served: tuple[str, str, str],
) -> None:
    url, key, session_id = served
    headers = {"Authorization": f"Bearer {key}"}

    async def main() -> tuple[list[int], list[str]]:
        async with httpx.AsyncClient(headers=headers) as http:
            use_reclaiming_pool(
                http,
                httpx.Limits(max_connections=1),
                network_backend=AsyncioBackend(),
                asyncio_primitives=True,
            )
            pool = http._transport._pool  # type: ignore[attr-defined]
            assert isinstance(pool, ReclaimingConnectionPool)
            answered = await asyncio.gather(
                *(http.get(f"{url}/sessions/{session_id}") for _ in range(5))
            )
            # One connection, five calls: four waited on the event for it.
            assert len(pool.connections) == 1
            outcomes = await asyncio.gather(
                *(
                    http.get(f"{url}/sessions/{session_id}", timeout=httpx.Timeout(5, pool=0.001))
                    for _ in range(3)
                ),
                return_exceptions=True,
            )
            return [r.status_code for r in answered], sorted(
                type(o).__name__ if isinstance(o, BaseException) else str(o.status_code)
                for o in outcomes
            )

    statuses, outcomes = asyncio.run(main())
    assert statuses == [200] * 5
    # The first takes the connection; the others find none within 1 ms (each answer
    # takes 5-20 ms) and fail as httpx says, not with a stray timeout or a hang.
    assert outcomes == ["200", "PoolTimeout", "PoolTimeout"]


@needs_primitives
@pytest.mark.anyio
async def test_on_trio_the_pool_keeps_httpcores_primitives(
    served: tuple[str, str, str],
) -> None:
    url, key, session_id = served
    async with AsyncClerk(key, server_url=url) as clerk:
        assert (await clerk.sessions.get(session_id)).id == session_id
        pool = clerk._transport.client._transport._pool  # type: ignore[attr-defined]
        locks = {type(c._request_lock) for c in pool.connections}
        inner = {type(c._connection._state_lock) for c in pool.connections}
        if sniffio.current_async_library() == "asyncio":
            assert locks == inner == {asyncio.Lock}
        else:
            assert asyncio.Lock not in locks | inner
            assert shield_can_matter()  # trio's shields are always httpcore's


@needs_primitives
def test_once_anyio_is_loaded_the_shields_are_httpcores_again() -> None:
    seen = run_fresh(
        f"""
        import asyncio, json, sys
        from clerk_sessions._pool_primitives import shield_can_matter

        async def main():
            before = shield_can_matter()
            import anyio
            with anyio.CancelScope():
                during = shield_can_matter()
            return before, during, {ANYIO_ASYNCIO_BACKEND!r} in sys.modules

        before, during, loaded = asyncio.run(main())
        print(json.dumps({{"before": before, "during": during, "loaded": loaded}}))
        """
    )
    assert seen == {"before": False, "during": True, "loaded": True}


# ---------------------------------------------------------------------------- the one copied body


def test_httpcores_response_close_is_still_the_one_the_shieldless_close_mirrors() -> None:
    # `_ShieldlessPoolByteStream.aclose` is httpcore's `PoolByteStream.aclose` without the
    # shield; its text is the same in httpcore 1.0.3 to 1.0.9 (this digest). Another
    # httpcore that changes it must have the mirror compared and redone, not run stale.
    path = inspect.getsourcefile(PoolByteStream)
    assert path is not None
    source = Path(path).read_text(encoding="utf-8")
    found = [
        ast.get_source_segment(source, method)
        for node in ast.parse(source).body
        if isinstance(node, ast.ClassDef) and node.name == "PoolByteStream"
        for method in node.body
        if isinstance(method, ast.AsyncFunctionDef) and method.name == "aclose"
    ]
    assert len(found) == 1 and found[0] is not None
    digest = hashlib.sha256(textwrap.dedent(found[0]).encode()).hexdigest()[:16]
    assert digest == "89647fb1d0aa4271", (
        f"httpcore {httpcore.__version__} changed PoolByteStream.aclose: compare it with "
        "clerk_sessions._pool_primitives._ShieldlessPoolByteStream.aclose, then update "
        "this digest"
    )
