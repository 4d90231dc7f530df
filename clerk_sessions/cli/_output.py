"""Everything the command line prints.

Two audiences, two streams. Results go to stdout: rich tables for people, or with
``--json`` one JSON document (a single result) or JSON lines (one object per session, for
lists and bulk results) for scripts. Progress, notes and errors go to stderr, so that
``clerk-sessions list --json | jq`` never sees them.

Colour is rich's decision: it is off when the stream is not a terminal and when
``NO_COLOR`` is set; nothing here forces it on. Markup is off on both consoles, because
ids, error messages and claims are data, and a ``[...]`` in them must print as is.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterable, Generator, Iterable, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
from rich.console import Console
from rich.table import Table
from rich.text import Text

from clerk_sessions.errors import ClerkErrors
from clerk_sessions.models import BulkRevokeResult, Session, SessionClaims

if TYPE_CHECKING:
    from clerk_sessions.cli._progress import Bar

__all__ = ["Output", "error_json", "session_json"]

# Without a terminal rich assumes 80 columns and folds table cells, which cuts session
# ids in half in `list > file`; a wide default keeps each row on one line.
_PIPE_WIDTH = 200
# A bulk failure list longer than this is summarised, so the summary line stays visible.
_MAX_FAILURE_LINES = 20

_STATUS_STYLES = {"active": "green", "revoked": "red", "pending": "yellow"}


def _console(stream: Any, *, stderr: bool) -> Console:
    width = None if stream.isatty() or "COLUMNS" in os.environ else _PIPE_WIDTH
    return Console(stderr=stderr, width=width, markup=False, highlight=False, emoji=False)


def _utc(ms_or_s: int | None, *, seconds: bool = False) -> str:
    if ms_or_s is None:
        return ""
    value = ms_or_s if seconds else ms_or_s / 1000
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _status(status: str) -> Text:
    return Text(str(status), style=_STATUS_STYLES.get(str(status), "dim"))


def _device(session: Session) -> str:
    activity = session.latest_activity
    if activity is None:
        return ""
    parts = [activity.browser_name, activity.device_type, activity.ip_address, activity.city]
    return ", ".join(part for part in parts if part)


def _jsonable(value: attrs.AttrsInstance) -> dict[str, Any]:
    """A model as the API's JSON (enums are str subclasses, tuples become lists)."""
    return attrs.asdict(value, recurse=True)


def session_json(session: Session) -> dict[str, Any]:
    """A session as the API's JSON object."""
    return _jsonable(session)


def error_json(exc: BaseException) -> dict[str, Any]:
    """An exception as a JSON object: the one-line message plus what scripts match on."""
    data: dict[str, Any] = {"message": str(exc), "type": type(exc).__name__}
    status_code = getattr(exc, "status_code", None)
    if status_code is not None:
        data["status_code"] = status_code
    if isinstance(exc, ClerkErrors):
        data["code"] = exc.errors[0].code if exc.errors else None
        data["clerk_trace_id"] = exc.clerk_trace_id
    return data


class Output:
    """Where and how a command prints; one per invocation."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json = json_mode
        self.out = _console(sys.stdout, stderr=False)
        self.err = _console(sys.stderr, stderr=True)

    # ------------------------------------------------------------------ stdout

    def document(self, data: Any) -> None:
        """One JSON document (a single result)."""
        self._write(json.dumps(data, indent=2, ensure_ascii=False))

    def line(self, data: Any) -> None:
        """One JSON line (an item of a list)."""
        self._write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def _write(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def plain(self, text: str) -> None:
        """A bare value on stdout (a token, for ``$(clerk-sessions token ...)``)."""
        self._write(text)

    def table(self, table: Table) -> None:
        self.out.print(table)

    def sessions(self, sessions: Iterable[Session], *, title: str | None = None) -> int:
        """Print sessions (a table, or JSON lines); return how many there were."""
        if self.json:
            count = 0
            for session in sessions:
                self.line(session_json(session))
                count += 1
            return count
        table = sessions_table(sessions, title=title)
        if table.row_count:
            self.table(table)
        return table.row_count

    async def sessions_async(
        self, sessions: AsyncIterable[Session], *, title: str | None = None
    ) -> int:
        """`sessions` for an async listing: JSON lines stream as pages arrive; a table
        needs every row first (column widths)."""
        if self.json:
            count = 0
            async for session in sessions:
                self.line(session_json(session))
                count += 1
            return count
        return self.sessions([session async for session in sessions], title=title)

    def session(self, session: Session) -> None:
        """One session: every field, as a document or a two-column table."""
        if self.json:
            self.document(session_json(session))
            return
        table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        table.add_row("id", session.id)
        table.add_row("status", _status(session.status))
        table.add_row("user_id", session.user_id)
        table.add_row("client_id", session.client_id)
        if session.last_active_organization_id:
            table.add_row("organization", session.last_active_organization_id)
        if session.actor:
            table.add_row("actor (impersonation)", json.dumps(session.actor))
        if session.tasks:
            table.add_row("pending tasks", ", ".join(task.key for task in session.tasks))
        for name in ("created_at", "updated_at", "last_active_at", "expire_at", "abandon_at"):
            table.add_row(name, _utc(getattr(session, name)) + " UTC")
        if session.latest_activity is not None:
            table.add_row("latest activity", _device(session))
        self.table(table)

    def claims(self, claims: SessionClaims, *, key_source: str) -> None:
        """Verified token claims: a document (the fields plus the raw payload) or a table."""
        if self.json:
            self.document(_jsonable(claims))
            return
        table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        table.add_row("valid", Text(f"yes (key: {key_source})", style="green"))
        table.add_row("session_id (sid)", claims.session_id)
        table.add_row("user_id (sub)", claims.user_id)
        if claims.session_status:
            table.add_row("session_status (sts)", claims.session_status)
        if claims.authorized_party:
            table.add_row("authorized_party (azp)", claims.authorized_party)
        if claims.issuer:
            table.add_row("issuer (iss)", claims.issuer)
        table.add_row("issued_at (iat)", _utc(claims.issued_at, seconds=True) + " UTC")
        table.add_row("expires_at (exp)", _utc(claims.expires_at, seconds=True) + " UTC")
        for label, value in (
            ("org_id", claims.org_id),
            ("org_role", claims.org_role),
            ("org_slug", claims.org_slug),
            ("plan", claims.plan),
        ):
            if value:
                table.add_row(label, value)
        if claims.org_permissions:
            table.add_row("org_permissions", ", ".join(claims.org_permissions))
        if claims.features:
            table.add_row("features", ", ".join(claims.features))
        if claims.actor:
            table.add_row("actor (act)", json.dumps(claims.actor))
        table.add_row("claims format", f"v{claims.version}")
        self.table(table)

    def bulk_lines(self, result: BulkRevokeResult) -> None:
        """One JSON line per id of a bulk revocation: revoked, or failed with the error."""
        for session_id, session in result.revoked.items():
            self.line({"session_id": session_id, "revoked": True, "status": str(session.status)})
        for session_id, exc in result.failed.items():
            self.line({"session_id": session_id, "revoked": False, "error": error_json(exc)})

    # ------------------------------------------------------------------ stderr

    def note(self, text: str) -> None:
        """A remark for the person at the terminal (stderr; stays out of piped results)."""
        self.err.print(Text(text, style="dim"), soft_wrap=True)

    def success(self, text: str) -> None:
        self.err.print(Text(text, style="green"), soft_wrap=True)

    def error(self, text: str) -> None:
        """One error line. soft_wrap: rich must not break it into several lines."""
        self.err.print(Text.assemble(("error: ", "bold red"), text), soft_wrap=True)

    def failures(self, failed: Mapping[str, BaseException]) -> None:
        """One error line per failed id (the first few; the count says how many more)."""
        for shown, (session_id, exc) in enumerate(failed.items()):
            if shown == _MAX_FAILURE_LINES:
                self.error(f"... and {len(failed) - shown} more failures (use --json for all)")
                break
            self.error(f"{session_id}: {exc}")

    @contextmanager
    def progress(self, description: str, *, enabled: bool) -> Generator[Bar | None, None, None]:
        """A progress bar on stderr (`clerk_sessions.cli._progress`); yields the
        ``on_progress(done, total)`` to hand the SDK, which also counts failures.

        Yields None when disabled, so the SDK does not even call back.
        """
        if not enabled:
            yield None
            return
        from clerk_sessions.cli._progress import progress_bar

        with progress_bar(self.err, description) as bar:
            yield bar


def sessions_table(sessions: Iterable[Session], *, title: str | None = None) -> Table:
    """The session list people read: one row per session, times in UTC."""
    table = Table(title=title, title_justify="left")
    table.add_column("session id", no_wrap=True)
    table.add_column("user id", no_wrap=True)
    table.add_column("status")
    table.add_column("last active (UTC)", no_wrap=True)
    table.add_column("expires (UTC)", no_wrap=True)
    table.add_column("latest activity")
    for session in sessions:
        table.add_row(
            session.id,
            session.user_id,
            _status(session.status),
            _utc(session.last_active_at),
            _utc(session.expire_at),
            _device(session),
        )
    return table
