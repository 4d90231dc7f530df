"""Django settings for the integration tests: the example project's, without environment.

Applied by ``django_env`` (tests/integrations/conftest.py) with ``override_settings``,
so they hold even when another test module configured Django first.
"""

from __future__ import annotations

SECRET_KEY = "django-insecure-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
INSTALLED_APPS = ["clerk_sessions.django"]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "clerk_sessions.django.middleware.ClerkMiddleware",
]
ROOT_URLCONF = "clerk_example.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
# Filled in per test by the `django_env` fixture (the fake's key and URL).
CLERK_SECRET_KEY = None
CLERK_API_URL = None
CLERK_AUTHORIZED_PARTIES = None
CLERK_JWT_KEY = None


def values() -> dict[str, object]:
    """Every setting of this module, by name."""
    return {name: value for name, value in globals().items() if name.isupper()}
