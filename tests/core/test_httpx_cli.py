"""``import clerk_sessions`` keeps httpx's command-line client (and click, rich and
pygments with it) unloaded until it is used, and then it works as before.

Each case runs in a fresh interpreter, since what matters is what gets imported first.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

CLI_PACKAGES = ("click", "rich", "pygments")


def run(code: str, *, no_fast_paths: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CLERK_SESSIONS_NO_FAST_PATHS"}
    env["COLUMNS"] = "100"  # rich lays out the help text to the terminal's width
    if no_fast_paths:
        env["CLERK_SESSIONS_NO_FAST_PATHS"] = "1"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


LOADED = """
import sys
{before}
import clerk_sessions, httpx
from clerk_sessions import AsyncClerk
AsyncClerk("sk_test_x")
print(sorted(m for m in ("httpx._main", "click", "rich", "pygments") if m in sys.modules))
print(type(sys.modules["httpx._main"]).__name__)
"""


def test_importing_the_sdk_and_building_a_client_loads_no_command_line_packages() -> None:
    result = run(LOADED.format(before=""))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["['httpx._main']", "_StandIn"]


@pytest.mark.parametrize(
    ("before", "no_fast_paths"),
    [("import httpx", False), ("", True)],
    ids=["httpx imported first", "fast paths off"],
)
def test_httpx_loads_its_command_line_as_usual_when_imported_first_or_switched_off(
    before: str, no_fast_paths: bool
) -> None:
    result = run(LOADED.format(before=before), no_fast_paths=no_fast_paths)

    assert result.returncode == 0, result.stderr
    loaded, kind = result.stdout.split("\n")[:2]
    assert kind == "module"
    for package in CLI_PACKAGES:
        if package in loaded:
            continue
        # Without the package httpx cannot load its command line either.
        assert importlib.util.find_spec(package) is None


HELP = """
import sys
{first}
import httpx
try:
    httpx.main(["--help"])
except SystemExit as exc:
    print("exit", exc.code)
"""


@pytest.mark.skipif(
    any(importlib.util.find_spec(p) is None for p in CLI_PACKAGES), reason="needs httpx[cli]"
)
def test_httpx_main_runs_the_real_command_line_on_first_call() -> None:
    deferred = run(HELP.format(first="import clerk_sessions"))
    plain = run(HELP.format(first=""))

    assert deferred.returncode == plain.returncode == 0, deferred.stderr + plain.stderr
    assert deferred.stdout == plain.stdout
    assert "Usage" in deferred.stdout and deferred.stdout.endswith("exit 0\n")


def test_any_other_name_of_the_module_loads_the_real_one() -> None:
    result = run(
        "import sys, clerk_sessions, httpx\n"
        "from httpx._main import print_help\n"
        "import httpx._main as module\n"
        "print(print_help.__module__, type(sys.modules['httpx._main']).__name__,"
        " module is sys.modules['httpx._main'], hasattr(httpx._main, 'print_help'))\n"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "httpx._main module True True\n"


def test_without_the_command_line_packages_httpx_main_says_what_to_install() -> None:
    # `sys.modules["click"] = None` makes `import click` fail, as when it is missing.
    result = run(
        "import sys, clerk_sessions, httpx\nsys.modules['click'] = None\nhttpx.main(['--help'])\n"
    )

    assert result.returncode == 1
    assert "pip install 'httpx[cli]'" in result.stderr
    assert "Traceback" not in result.stderr
