"""The documentation site builds with ``mkdocs build --strict``.

Strict mode turns every warning into a failure: a broken link, a page missing from the
nav, a ``:::`` reference to a name that does not exist, or a docstring mkdocstrings
cannot parse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[dev]'")
pytest.importorskip(
    "mkdocstrings_handlers.python",
    reason="mkdocstrings[python] is not installed: pip install -e '.[dev]'",
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_site_builds_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "index.html").is_file()
    assert (site / "reference" / "clients" / "index.html").is_file()
