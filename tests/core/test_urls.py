"""URLs shown in messages and logs lose their password (clerk_sessions/_urls.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clerk_sessions._urls import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:pw@h:6379/0", "redis://user:***@h:6379/0"),
        ("redis://:pw@h/0", "redis://:***@h/0"),
        ("rediss://token@h", "rediss://***@h"),
        ("redis://u:p/a@ss@h/0", "redis://u:***@h/0"),  # unencoded / and @ in it
        ("redis://h/0?password=pw&db=1", "redis://h/0?password=***&db=1"),
        ("unix://:pw@/run/redis.sock?db=2", "unix://:***@/run/redis.sock?db=2"),
        ("/var/lib/app/jobs@2.db", "/var/lib/app/jobs@2.db"),  # a path has no password
    ],
)
def test_the_password_is_replaced_and_the_rest_kept(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@given(
    st.text(st.characters(exclude_characters="@"), min_size=1),
    st.from_regex(r"[a-z0-9.-]+", fullmatch=True),
)
def test_no_password_survives_whatever_it_holds(password: str, host: str) -> None:
    assert redact_url(f"redis://user:{password}@{host}:6379/0") == f"redis://user:***@{host}:6379/0"
