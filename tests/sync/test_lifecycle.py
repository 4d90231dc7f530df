"""A `Clerk` nobody closes: the process still exits, and a dropped one is closed for it.

Scripts, notebooks and gunicorn workers often keep one module-level `Clerk` and never
call ``close()``. Its portal's loop runs in a daemon thread; left to interpreter
finalization, closing it would wait for a thread that no longer runs, and the process
would hang at exit. These tests run real processes (and a real fork) to show it exits.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import time

import pytest

from clerk_sessions import Clerk
from clerk_sessions.testing import FakeClerk

from .conftest import portal_threads

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from clerk_sessions import Clerk
    from clerk_sessions.testing import FakeClerk

    fake = FakeClerk()
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    with fake.serve() as url:
        clerk = Clerk(fake.secret_key, server_url=url)  # never closed
        print("parent", clerk.sessions.get(session_id).id == session_id, flush=True)
        if sys.argv[1] == "fork":
            pid = os.fork()
            if pid == 0:
                print("child", clerk.sessions.get(session_id).id == session_id, flush=True)
                sys.exit(0)  # a normal interpreter exit, as a gunicorn worker's
            _, status = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(status), flush=True)
    print("end of script", flush=True)
    """
)


def run_script(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,  # a hang at exit is the failure this looks for
        check=False,
    )


def test_a_script_that_never_closes_its_clerk_exits() -> None:
    result = run_script("plain")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["parent True", "end of script"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_that_never_closes_its_clerk_exits() -> None:
    result = run_script("fork")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "parent True",
        "child True",
        "child exit 0",
        "end of script",
    ]


def test_a_dropped_clerk_is_closed_with_a_resource_warning(
    fake: FakeClerk, served_url: str
) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    before = set(portal_threads())
    clerk = Clerk(fake.secret_key, server_url=served_url)
    assert clerk.sessions.get(session_id).id == session_id
    assert len(set(portal_threads()) - before) == 1
    with pytest.warns(ResourceWarning, match="without close"):
        del clerk
        gc.collect()
    deadline = time.monotonic() + 10
    while set(portal_threads()) - before:
        assert time.monotonic() < deadline, "the dropped Clerk's loop thread still runs"
        time.sleep(0.01)


def test_a_closed_clerk_that_is_dropped_warns_nothing(fake: FakeClerk, served_url: str) -> None:
    session_id = fake.add_session(user_id=fake.add_user())["id"]
    with Clerk(fake.secret_key, server_url=served_url) as clerk:
        clerk.sessions.get(session_id)
    import warnings

    # Earlier tests' garbage first (an unclosed loop or socket elsewhere in this worker
    # would warn too): only the dropped Clerk is judged under the error filter below.
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del clerk
        gc.collect()
