"""The how-to's picture comes from a real traced run: scripts/trace_revoke_all.py runs a
``revoke_all`` against the fake on a loopback port and draws its spans."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "trace_revoke_all.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_trace_picture_script_draws_a_traced_revoke_all(tmp_path: Path) -> None:
    out = tmp_path / "trace.png"

    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=REPO_ROOT,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "revoke_all, 6 revoked"
    assert sum(line.startswith("revoke, 200") for line in lines) == 6
    assert sum(line.startswith("list_page, 200") for line in lines) == 2
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_the_committed_picture_is_a_png() -> None:
    picture = REPO_ROOT / "docs" / "img" / "trace-revoke-all.png"

    assert picture.read_bytes().startswith(PNG_SIGNATURE)
