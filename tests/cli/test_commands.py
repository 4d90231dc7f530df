"""The commands against an instance (the fake on a real port), as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Served, base_env, run_cli


def json_lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_list_json_prints_one_line_per_session_newest_first(served: Served) -> None:
    fake = served.fake
    ids = [fake.add_session(user_id="user_a", created_at=1_000 + i)["id"] for i in range(3)]
    fake.add_session(user_id="user_other")

    result = served.run("list", "--user-id", "user_a", "--json")

    assert result.returncode == 0, result.stderr
    assert [line["id"] for line in json_lines(result.stdout)] == ids[::-1]
    assert result.stderr == ""  # nothing but results on stdout, no notes in --json mode


def test_list_table_shows_the_sessions_and_says_how_to_page(served: Served) -> None:
    for _ in range(3):
        served.fake.add_session(user_id="user_a")

    result = served.run("list", "--user-id", "user_a", "--limit", "2")

    assert result.returncode == 0, result.stderr
    listed = served.fake.sessions[:2]
    assert all(session["id"] in result.stdout for session in listed)
    assert "1-2 of 3; --offset 2 for more, or --all" in result.stderr


def test_list_all_pages_through_every_match(served: Served) -> None:
    for _ in range(12):  # more than the API's default page of 10
        served.fake.add_session(user_id="user_a")

    result = served.run("--json", "list", "--user-id", "user_a", "--all")

    assert result.returncode == 0, result.stderr
    assert len(json_lines(result.stdout)) == 12


def test_get_json_is_one_document_equal_to_the_api_answer(served: Served) -> None:
    session = served.fake.add_session(user_id="user_a")

    result = served.run("get", session["id"], "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == session


def test_revoke_json_reports_each_id_and_exits_3_when_some_fail(served: Served) -> None:
    session = served.fake.add_session(user_id="user_a")

    result = served.run("revoke", session["id"], "sess_unknown", "--json")

    assert result.returncode == 3
    lines = {line["session_id"]: line for line in json_lines(result.stdout)}
    assert lines[session["id"]] == {
        "session_id": session["id"],
        "revoked": True,
        "status": "revoked",
    }
    failed = lines["sess_unknown"]
    assert failed["revoked"] is False
    assert failed["error"]["code"] == "resource_not_found"  # type: ignore[index]
    assert served.fake.get_session(session["id"])["status"] == "revoked"
    assert "1 of 2 session(s) NOT revoked; 1 revoked" in result.stderr


def test_revoke_all_with_yes_signs_the_user_out_everywhere_and_no_one_else(
    served: Served,
) -> None:
    fake = served.fake
    mine = [fake.add_session(user_id="user_a")["id"] for _ in range(5)]
    other = fake.add_session(user_id="user_b")["id"]

    result = served.run("revoke-all", "--user-id", "user_a", "--yes", "--rate-limit", "100/10")

    assert result.returncode == 0, result.stderr
    assert {fake.get_session(i)["status"] for i in mine} == {"revoked"}
    assert fake.get_session(other)["status"] == "active"
    assert "revoked 5 session(s)" in result.stderr


def test_revoke_all_without_yes_refuses_when_it_cannot_ask(served: Served) -> None:
    session = served.fake.add_session(user_id="user_a")

    result = served.run("revoke-all", "--user-id", "user_a")  # stdin is a pipe

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: refusing to revoke without confirmation: stdin is not a terminal; "
        "pass --yes (or --dry-run to look first)"
    )
    assert served.fake.requests == []  # decided before any request
    assert served.fake.get_session(session["id"])["status"] == "active"


def test_revoke_all_dry_run_lists_the_active_sessions_and_changes_nothing(
    served: Served,
) -> None:
    fake = served.fake
    active = {fake.add_session(user_id="user_a")["id"] for _ in range(2)}
    fake.add_session(user_id="user_a", status="ended")

    result = served.run("revoke-all", "--user-id", "user_a", "--dry-run", "--json")

    assert result.returncode == 0, result.stderr
    assert {line["id"] for line in json_lines(result.stdout)} == active
    assert "would revoke 2 active session(s) of user user_a" in result.stderr
    assert {s["status"] for s in fake.sessions} == {"active", "ended"}


def test_revoke_all_exits_3_when_some_sessions_cannot_be_revoked(served: Served) -> None:
    fake = served.fake
    good = fake.add_session(user_id="user_a")["id"]
    # ".." can never be sent as a path segment, so this one always fails client-side:
    # a deterministic partial failure without faking the network.
    fake.add_session(user_id="user_a", session_id="..")

    result = served.run("revoke-all", "--user-id", "user_a", "--yes", "--json")

    assert result.returncode == 3
    outcome = {line["session_id"]: line["revoked"] for line in json_lines(result.stdout)}
    assert outcome == {good: True, "..": False}
    assert "error: ..: " in result.stderr


def test_token_prints_a_bare_jwt_that_verify_token_checks_against_jwks(served: Served) -> None:
    session = served.fake.add_session(user_id="user_a")

    minted = served.run("token", session["id"], "--expires-in", "120")
    assert minted.returncode == 0, minted.stderr
    jwt = minted.stdout.strip()
    assert jwt.count(".") == 2

    # "-": the token comes from stdin, keeping it out of the shell history.
    verified = served.run("verify-token", "-", "--json", stdin=jwt + "\n")

    assert verified.returncode == 0, verified.stderr
    claims = json.loads(verified.stdout)
    assert (claims["session_id"], claims["user_id"]) == (session["id"], "user_a")
    assert claims["expires_at"] - claims["issued_at"] == 120
    assert [r.raw_path for r in served.fake.requests][-1] == "/v1/jwks"


def test_verify_token_with_a_pem_file_needs_no_key_and_no_network(
    served: Served, tmp_path: Path
) -> None:
    fake = served.fake
    session = fake.add_session(user_id="user_a")
    pem = tmp_path / "clerk.pem"
    pem.write_text(fake.public_key_pem)
    good = fake.mint_token(session["id"])
    expired = fake.mint_token(session["id"], extra_claims={"exp": int(time.time()) - 60})

    ok = run_cli("verify-token", good, "--jwt-key", str(pem), env=base_env())
    bad = run_cli("verify-token", expired, "--jwt-key", str(pem), env=base_env())

    assert ok.returncode == 0, ok.stderr
    assert session["id"] in ok.stdout and f"--jwt-key {pem}" in ok.stdout
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: token_expired: ")
    assert fake.requests == []


def test_verify_token_checks_the_authorized_party(served: Served, tmp_path: Path) -> None:
    fake = served.fake
    token = fake.mint_token(fake.add_session()["id"])  # azp: http://localhost:3000
    env = base_env(CLERK_JWT_KEY=fake.public_key_pem)

    result = run_cli("verify-token", token, "--authorized-party", "https://app.example", env=env)

    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "azp" in result.stderr or "authorized" in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("answer", "code", "status"), [("y", 0, "revoked"), ("n", 1, "active")])
def test_revoke_all_asks_on_a_terminal_first(
    served: Served, answer: str, code: int, status: str
) -> None:
    import pty  # POSIX only

    fake = served.fake
    ids = [fake.add_session(user_id="user_a")["id"] for _ in range(2)]
    terminal, stdin = pty.openpty()  # stdin is a terminal: the command may ask
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "clerk_sessions.cli", "revoke-all", "--user-id", "user_a"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=served.env,
        )
        os.close(stdin)
        os.write(terminal, f"{answer}\n".encode())
        _, stderr = process.communicate(timeout=30)
    finally:
        os.close(terminal)

    assert process.returncode == code, stderr
    assert "Revoke 2 active session(s) of user user_a? [y/N]" in stderr
    assert {fake.get_session(i)["status"] for i in ids} == {status}
    if answer == "n":
        assert "error: not confirmed: nothing was revoked" in stderr
