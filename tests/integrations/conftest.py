"""Fixtures for the integration tests (FastAPI/Starlette and Django).

Django is configured here, and only if nothing configured it before, so that the rest of
the suite keeps running without Django settings (pytest-django stays inert there). The
Django tests then apply this directory's settings on top with ``override_settings``
(`django_env`), whichever module configured Django first.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings
from django.test.utils import override_settings

from clerk_sessions.testing import FakeClerk
from tests.integrations import django_settings
from tests.integrations._support import EXAMPLES

# The example project's package (clerk_example) is importable for ROOT_URLCONF.
if str(EXAMPLES / "django_project") not in sys.path:
    sys.path.insert(0, str(EXAMPLES / "django_project"))

if not settings.configured:
    settings.configure(**django_settings.values())
    django.setup()


@pytest.fixture
def fake() -> FakeClerk:
    """A fresh fake Clerk instance with one signing key."""
    return FakeClerk()


@pytest.fixture(scope="module")
def served_fake() -> Iterator[tuple[FakeClerk, str]]:
    """One fake per module on a loopback port (the sync client talks to a URL)."""
    fake = FakeClerk()
    with fake.serve() as url:
        yield fake, url


@pytest.fixture
def django_env(served_fake: tuple[FakeClerk, str]) -> Iterator[FakeClerk]:
    """This directory's Django settings, pointed at a reset fake; yields the fake.

    Changing the CLERK_* settings (here and on the way out) drops the process-wide
    client, so each test starts with a fresh one: no JWKS cached from another test.
    """
    fake, url = served_fake
    fake.reset()
    # DATABASES is left alone: Django warns that overriding it is unsafe (and none is used).
    overrides: dict[str, Any] = {
        **{name: v for name, v in django_settings.values().items() if name != "DATABASES"},
        "CLERK_SECRET_KEY": fake.secret_key,
        "CLERK_API_URL": url,
    }
    with override_settings(**overrides):
        yield fake
