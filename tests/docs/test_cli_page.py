"""docs/reference/cli.md names every command of ``clerk-sessions``."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_cli_command_is_documented() -> None:
    from clerk_sessions.cli import command

    cli = command()

    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    missing = [name for name in cli.commands if f"`clerk-sessions {name}" not in page]
    assert not missing, f"docs/reference/cli.md lacks these commands: {missing}"
