"""The pytest plugin module imports cheaply and without the testing extra."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

PROBE = """
import sys
sys.modules["starlette"] = None  # as if the testing extra were not installed
sys.modules["uvicorn"] = None
import clerk_sessions.testing.pytest_plugin as plugin
assert callable(plugin.fake_clerk)
heavy = {"starlette", "uvicorn", "cryptography", "jwt", "clerk_sessions.testing._fake"}
loaded = heavy & {name for name, module in sys.modules.items() if module is not None}
print(sorted(loaded))
"""


def test_plugin_imports_without_the_testing_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
