"""The command's exit codes, and the error that carries one: a leaf every command imports.

- 0: done.
- 1: failed: an API error, no answer, an invalid token, a bug. One line on stderr with
  Clerk's error code and trace id (``--debug`` adds the traceback).
- 2: usage: a bad option or argument, no secret key, a refused confirmation that needs
  ``--yes``. Nothing was sent to Clerk.
- 3: partial failure of a bulk command (``revoke``, ``revoke-all``): some sessions were
  revoked and some were not; the failures are listed. When every id failed it is 1.
  The ``job`` commands use 3 for configuration instead (`EXIT_CONFIGURATION`: no key, a
  store or quota URL that cannot be used, a store that lost the job's data), as the
  durable-jobs contract lists; a job's failed items are its exit 1, and ``job failed``
  lists them.
- 130: interrupted (Ctrl-C), as shells report SIGINT. 141: stdout was closed early
  (``| head``), as shells report SIGPIPE.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CONFIGURATION",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "CommandError",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_CONFIGURATION = 3  # the job commands' meaning of 3 (see above)
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class CommandError(Exception):
    """A failure the command already explained: print the message, exit with the code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
