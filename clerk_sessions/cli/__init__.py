"""The ``clerk-sessions`` command line (extra ``cli``: click and rich).

``main`` is the console script's entry point. It imports the command definitions only
when called, and they import the SDK, rich and the fake only in the commands that use
them, so that ``clerk-sessions --help`` starts fast. Core never imports this package.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run ``clerk-sessions`` with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    from clerk_sessions.cli._app import run

    run(argv)
