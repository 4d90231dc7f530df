"""The integrations stay out of the core's import graph."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_importing_the_core_imports_no_framework() -> None:
    code = (
        "import sys, clerk_sessions\n"
        "from clerk_sessions import AsyncClerk, Clerk, errors, models\n"
        "loaded = {m.split('.')[0] for m in sys.modules} | set(sys.modules)\n"
        "found = loaded & {'starlette', 'fastapi', 'django', 'asgiref', 'rest_framework',\n"
        "                  'clerk_sessions.fastapi', 'clerk_sessions.starlette',\n"
        "                  'clerk_sessions.django'}\n"
        "assert not found, found\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
