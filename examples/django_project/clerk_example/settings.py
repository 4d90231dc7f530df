"""Settings of the example project: an API that authenticates Clerk session tokens.

Configured by environment: ``CLERK_SECRET_KEY`` (required), ``CLERK_API_URL``,
``CLERK_AUTHORIZED_PARTIES`` (comma-separated origins), ``CLERK_JWT_KEY`` (optional PEM),
``DJANGO_SECRET_KEY`` and ``DJANGO_DEBUG``.
"""

from __future__ import annotations

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    # Registers the checks: `manage.py check` reports a missing CLERK_SECRET_KEY.
    "clerk_sessions.django",
]

# No sessions, no CSRF middleware: callers authenticate each request with a Clerk token.
# (Clerk's __session cookie is SameSite=Lax, so a cross-site form cannot POST with it.)
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "clerk_sessions.django.middleware.ClerkMiddleware",
]

ROOT_URLCONF = "clerk_example.urls"
WSGI_APPLICATION = "clerk_example.wsgi.application"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

CLERK_SECRET_KEY = os.environ.get("CLERK_SECRET_KEY")
CLERK_API_URL = os.environ.get("CLERK_API_URL")
CLERK_AUTHORIZED_PARTIES = [
    origin.strip()
    for origin in os.environ.get("CLERK_AUTHORIZED_PARTIES", "").split(",")
    if origin.strip()
] or None
CLERK_JWT_KEY = os.environ.get("CLERK_JWT_KEY")
