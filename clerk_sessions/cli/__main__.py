"""``python -m clerk_sessions.cli``: the same as the ``clerk-sessions`` command."""

from clerk_sessions.cli import main

main()
