"""``CLERK_SESSIONS_NO_FAST_PATHS`` turns all the fast paths off, and only them.

Each case runs in a fresh interpreter: the switch is read once, at import.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PROBE = """
import json, sys
from clerk_sessions import AsyncClerk, _portal
from clerk_sessions._codec import converter as _serde
from clerk_sessions._codec import decode as _decode
from clerk_sessions._http import transport
from clerk_sessions._http.pool import AsyncioBackend
from clerk_sessions.models import Session
from clerk_sessions.testing import FakeClerk

portal_calls = 0

class CountedCall(_portal._Call):
    def __init__(self, coro):
        global portal_calls
        portal_calls += 1
        super().__init__(coro)

_portal._Call = CountedCall
pool = AsyncClerk("sk_test_x")._transport.client._transport.pool
fake = FakeClerk()
stored = fake.add_session(user_id="user_1")
with fake.client() as clerk:
    session = clerk.sessions.get(stored["id"])
hook = _serde.converter.get_structure_hook(Session)
print(json.dumps({
    "asyncio_backend": isinstance(pool._network_backend, AsyncioBackend),
    "asyncio_timeout": transport._asyncio_timeout is not None,
    "generated_decoder": getattr(hook, "_clerk_generated", False),
    "decoder_written_ahead": _decode._structure_session is getattr(
        sys.modules.get("clerk_sessions._codec.generated"), "structure_Session", None
    ),
    "orjson": _decode._fast_loads is not None,
    "own_portal_calls": portal_calls > 0,
    "answer": [session.id == stored["id"], session.user_id, session.status.value],
}))
"""

FAST = {
    "asyncio_backend": True,
    "asyncio_timeout": True,
    "generated_decoder": True,
    "decoder_written_ahead": True,
    "orjson": importlib.util.find_spec("orjson") is not None,
    "own_portal_calls": True,
}
STOCK = {
    "asyncio_backend": False,
    "asyncio_timeout": False,
    "generated_decoder": False,
    "decoder_written_ahead": False,
    "orjson": False,
    "own_portal_calls": False,
}


def probe(value: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "CLERK_SESSIONS_NO_FAST_PATHS"}
    if value is not None:
        env["CLERK_SESSIONS_NO_FAST_PATHS"] = value
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, FAST), ("", FAST), ("0", FAST), ("1", STOCK)],
    ids=["unset", "empty", "zero", "one"],
)
def test_the_switch_turns_the_fast_paths_off_together(
    value: str | None, expected: dict[str, bool]
) -> None:
    answer = probe(value)
    assert answer.pop("answer") == [True, "user_1", "active"]
    assert answer == expected
