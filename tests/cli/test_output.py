"""What the command line prints for people: the tables of ``Output``, in-process."""

from __future__ import annotations

import pytest

from clerk_sessions._claims import SessionClaims
from clerk_sessions.cli._output import Output
from clerk_sessions.errors import ClerkSessionsError
from clerk_sessions.models import Session, SessionActivity, SessionStatus, SessionTask

# 2023-11-14 22:13:20 UTC
_T_MS = 1_700_000_000_000


def make_session(**changes: object) -> Session:
    fields: dict[str, object] = {
        "object": "session",
        "id": "sess_1",
        "user_id": "user_1",
        "client_id": "client_1",
        "status": SessionStatus.ACTIVE,
        "last_active_at": _T_MS,
        "expire_at": _T_MS,
        "abandon_at": _T_MS,
        "updated_at": _T_MS,
        "created_at": _T_MS,
        **changes,
    }
    return Session(**fields)  # type: ignore[arg-type]


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> Output:
    for name in ("COLUMNS", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    return Output(json_mode=False)


def rows(text: str) -> dict[str, str]:
    """A two-column table as {label: value} (labels are separated by 2+ spaces)."""
    table: dict[str, str] = {}
    for line in text.splitlines():
        label, _, value = line.strip().partition("  ")
        table[label] = value.strip()
    return table


def test_session_table_shows_optional_fields_only_when_present(
    output: Output, capsys: pytest.CaptureFixture[str]
) -> None:
    full = make_session(
        last_active_organization_id="org_1",
        actor={"sub": "user_admin"},
        tasks=(SessionTask(key="choose-organization"), SessionTask(key="reset-password")),
        latest_activity=SessionActivity(
            object="session_activity",
            id="sess_activity_1",
            is_mobile=False,
            browser_name="Firefox",
            device_type=None,
            ip_address="192.0.2.1",
            city="Lisbon",
        ),
    )

    output.session(full)
    shown = rows(capsys.readouterr().out)
    output.session(make_session())
    bare = rows(capsys.readouterr().out)

    assert shown["organization"] == "org_1"
    assert shown["actor (impersonation)"] == '{"sub": "user_admin"}'
    assert shown["pending tasks"] == "choose-organization, reset-password"
    assert shown["latest activity"] == "Firefox, 192.0.2.1, Lisbon"  # None parts left out
    assert shown["created_at"] == "2023-11-14 22:13:20 UTC"
    assert shown["status"] == "active"
    assert set(bare) == {
        "id",
        "status",
        "user_id",
        "client_id",
        "created_at",
        "updated_at",
        "last_active_at",
        "expire_at",
        "abandon_at",
    }


def test_sessions_table_leaves_the_activity_cell_empty_without_activity(
    output: Output, capsys: pytest.CaptureFixture[str]
) -> None:
    count = output.sessions([make_session(id="sess_no_activity")])

    out = capsys.readouterr().out
    assert count == 1
    [row] = [line for line in out.splitlines() if "sess_no_activity" in line]
    assert row.split("│")[1:-1][-1].strip() == ""  # the "latest activity" column


def test_claims_table_shows_organization_features_and_actor(
    output: Output, capsys: pytest.CaptureFixture[str]
) -> None:
    claims = SessionClaims(
        session_id="sess_1",
        user_id="user_1",
        expires_at=1_700_000_060,
        issued_at=None,
        org_id="org_1",
        org_role="org:admin",
        org_slug="acme",
        plan="u:free_user",
        org_permissions=("org:invoices:read", "org:invoices:write"),
        features=("o:reports", "u:chat"),
        actor={"sub": "user_admin"},
        version=2,
    )

    output.claims(claims, key_source="CLERK_JWT_KEY")
    shown = rows(capsys.readouterr().out)

    assert shown["valid"] == "yes (key: CLERK_JWT_KEY)"
    assert shown["org_id"] == "org_1"
    assert shown["org_role"] == "org:admin"
    assert shown["org_slug"] == "acme"
    assert shown["plan"] == "u:free_user"
    assert shown["org_permissions"] == "org:invoices:read, org:invoices:write"
    assert shown["features"] == "o:reports, u:chat"
    assert shown["actor (act)"] == '{"sub": "user_admin"}'
    assert shown["claims format"] == "v2"
    assert shown["issued_at (iat)"] == "UTC"  # no iat: no time, not 1970
    # Claims the token does not carry get no row at all.
    assert not {"session_status (sts)", "authorized_party (azp)", "issuer (iss)"} & set(shown)


def test_long_failure_lists_are_cut_after_twenty_lines_with_a_count(
    output: Output, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = {f"sess_{i}": ClerkSessionsError(f"boom {i}") for i in range(25)}

    output.failures(failed)

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 21
    assert lines[0] == "error: sess_0: boom 0"
    assert lines[19] == "error: sess_19: boom 19"
    assert lines[20] == "error: ... and 5 more failures (use --json for all)"
