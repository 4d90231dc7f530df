"""The official SDK's documented examples (the seed) run on clerk-sessions with only the
import changed, against the fake on a loopback port.

Each example builds ``Clerk(bearer_auth="<YOUR_BEARER_TOKEN_HERE>")`` and calls one
sessions operation with the ids it names; the fake is seeded with exactly those ids and
accepts exactly that key, and ``CLERK_API_URL`` points the client at it.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from clerk_sessions.testing import FakeClerk
from tests.conftest import SHARED_DIR

SEED = SHARED_DIR / "seed" / "000_7b3b07be880c27bc.txt"
PLACEHOLDER_KEY = "<YOUR_BEARER_TOKEN_HERE>"
# What changes: the import lines, and nothing else.
IMPORTS = {
    "import clerk_backend_api": "import clerk_sessions as clerk_backend_api",
    "from clerk_backend_api import Clerk": "from clerk_sessions import Clerk",
}


def seed_examples() -> list[tuple[str, str]]:
    """(operation, code) for every Python example of the seed, in order."""
    examples = []
    for section in re.split(r"^## ", SEED.read_text(), flags=re.M)[1:]:
        title, _, body = section.partition("\n")
        block = re.search(r"```python\n(.*?)```", body, re.S)
        if block is not None:
            examples.append((title.strip("~ "), block.group(1)))
    return examples


def migrated(code: str) -> str:
    lines = code.splitlines()
    changed = [IMPORTS.get(line, line) for line in lines]
    assert changed != lines, "no import was changed"
    assert not any("clerk_backend_api import" in line for line in changed)
    return "\n".join(changed)


def ids_in(code: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+_id)="([^"]+)"', code)) | {
        name: value for name, value in re.findall(r'"(user_id)": "([^"]+)"', code)
    }


EXAMPLES = seed_examples()


def test_the_seed_has_an_example_for_every_operation_it_lists() -> None:
    assert [op for op, _ in EXAMPLES] == [
        "list",
        "create",
        "get",
        "revoke",
        "verify",
        "create_token",
        "create_token_from_template",
    ]


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk(secret_key=PLACEHOLDER_KEY)


@pytest.fixture
def served(fake: FakeClerk, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with fake.serve() as url:
        monkeypatch.setenv("CLERK_API_URL", url)
        yield url


def seed_state(fake: FakeClerk, code: str) -> dict[str, Any]:
    """Users, sessions and templates named by the example, so that it finds them."""
    ids = ids_in(code)
    user_id = ids.get("user_id", "user_seed")
    fake.add_user(user_id)
    session: dict[str, Any] = {}
    if "session_id" in ids:
        client_id = ids.get("client_id")
        if client_id is not None:
            fake.add_client(user_id, client_id=client_id)
        session = fake.add_session(
            user_id=user_id, session_id=ids["session_id"], client_id=client_id
        )
    elif "client_id" in ids:
        fake.add_client(user_id, client_id=ids["client_id"])
        session = fake.add_session(user_id=user_id, client_id=ids["client_id"])
    template = re.search(r'template_name="([^"]+)"', code)
    if template is not None:
        fake.add_template(template.group(1))
    return session


@pytest.mark.parametrize(("op", "code"), EXAMPLES, ids=[op for op, _ in EXAMPLES])
def test_a_seed_example_runs_with_only_the_import_changed(
    fake: FakeClerk, served: str, op: str, code: str
) -> None:
    session = seed_state(fake, code)
    source = migrated(code)
    if op == "verify":
        # The seed's token is an HS256 sample. Clerk's verify endpoint checks the token
        # against the session; the fake does the same, so the sample is swapped for a
        # real token of the session the example names. The call shape is untouched.
        sample = re.search(r'token="([^"]+)"', source)
        assert sample is not None
        source = source.replace(sample.group(1), fake.mint_token(session["id"]))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(source, f"<seed example: {op}>", "exec"), {"__name__": "__seed__"})
    assert printed.getvalue().strip()  # the example printed its result
    assert len(fake.requests) == 1
    request = fake.requests[0]
    assert request.status == 200, request
    assert request.authenticated  # by the placeholder key, the only one the fake accepts
    if op == "verify":
        assert any(issubclass(w.category, DeprecationWarning) for w in caught)
