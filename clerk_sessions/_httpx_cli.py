"""Keep httpx's command-line client out of ``import httpx`` until someone uses it.

``import httpx`` imports ``httpx._main``, its command-line client, and with it click,
rich and pygments whenever they are installed (they are with this SDK's ``cli`` extra,
and rich is common anyway): about 30 ms of a 200 ms cold start here, for a command line
that the SDK never runs. `install` puts a stand-in for ``httpx._main`` in
``sys.modules`` before httpx is first imported. Its ``main`` (what httpx exposes as
``httpx.main``) loads the real module when called, and so does reading any other name
of it, so the command line and everything in the module work as before, only later.

Nothing is done when httpx is already imported (the real module is then loaded), or
when the fast paths are off (``CLERK_SESSIONS_NO_FAST_PATHS``, `_config.FAST_PATHS`).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from clerk_sessions._config import FAST_PATHS

__all__ = ["install"]

_NAME = "httpx._main"


def _real() -> types.ModuleType:
    """``httpx._main`` itself, imported in place of the stand-in on first use."""
    module = sys.modules.get(_NAME)
    if isinstance(module, _StandIn):
        del sys.modules[_NAME]
    return importlib.import_module(_NAME)


class _StandIn(types.ModuleType):
    """What ``sys.modules["httpx._main"]`` holds until the real module is needed."""

    def __getattr__(self, name: str) -> Any:
        # Only names the stand-in lacks get here. The import system probes dunders
        # (``from httpx._main import main`` asks for ``__path__``): those are not use.
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(_real(), name)


def main(*args: Any, **kwargs: Any) -> Any:
    """httpx's command line (``httpx.main``), loaded on this first call."""
    try:
        real = _real()
    except ImportError as exc:
        # What httpx's own fallback does without its [cli] extra: say so, exit 1.
        print(
            f"the httpx command line needs packages that are not installed ({exc}); "
            "install them with: pip install 'httpx[cli]'",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    return real.main(*args, **kwargs)


def install() -> bool:
    """Put the stand-in in place if httpx is not imported yet; True when it was."""
    if not FAST_PATHS or "httpx" in sys.modules or _NAME in sys.modules:
        return False
    stand_in = _StandIn(_NAME, "Stand-in for httpx._main until it is used (clerk_sessions).")
    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
    return True
