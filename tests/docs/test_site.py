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

# The docs tools come with the test dependency group; no nox session of its own builds
# the site, so a missing tool fails here rather than skipping the build.
import mkdocs  # noqa: F401  # pyright: ignore[reportUnusedImport]
import mkdocstrings_handlers.python  # noqa: F401  # pyright: ignore[reportUnusedImport]
import pytest

ROOT = Path(__file__).resolve().parents[2]


# `once`: the site is the same whichever Python builds it (noxfile.py).
@pytest.mark.slow
@pytest.mark.once
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
