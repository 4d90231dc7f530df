"""The ``clerk-sessions`` command line (extra ``cli``: click and rich).

``main`` is the console script's entry point. The command definitions load only when it
is called, and they import the SDK, rich and the fake only in the commands that use
them, so that ``clerk-sessions --help`` starts fast. Core never imports this package.

The layout: `_root` is the click group and everything commands share (options, the one
way to build a client, exit codes by outcome); `_sessions`, `_jobs` and `_local` each add
their commands to it, and import it, never each other; `_output`, `_mock`, `_demo` and
`_idfile` do the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click

__all__ = ["command", "main"]


def command() -> click.Group:
    """The ``clerk-sessions`` click group, with every command on it."""
    # Each of these adds its commands to the root group as it loads.
    from clerk_sessions.cli import _jobs, _local, _sessions  # noqa: F401  # pyright: ignore[reportUnusedImport]
    from clerk_sessions.cli._root import cli

    return cli


def main(argv: list[str] | None = None) -> None:
    """Run ``clerk-sessions`` with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    command()
    from clerk_sessions.cli._root import run

    run(argv)
